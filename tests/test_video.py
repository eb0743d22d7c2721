"""``upscale video``: real PyAV-made videos through the CLI; timing, streams, colour, the luma path, bad input."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.torch import save_file

from tests.media import make_video, pan_frames, probe, yuv_planes, yuv_to_rgb_reference
from upscale.cli import main
from upscale.engine import EngineOptions, Upscaler
from upscale.io import streaming
from upscale.io.streaming import VideoOptions, upscale_video
from upscale.io.video import EncodeSettings, VideoWriter
from upscale.io.yuv import resize_chroma
from upscale.models import REGISTRY, build_model
from upscale.models.loading import LoadedModel
from upscale.models.nets.bicubic import Bicubic
from upscale.models.registry import ModelSpec
from upscale.resize import imresize_np

VFR_MS = [0, 40, 80, 100, 200, 250, 300, 400, 410, 420, 500, 600]


def run(*args: str | Path) -> tuple[int, str]:
    """Exit code and stderr of ``upscale video ARGS``; stdout must stay empty."""
    result = CliRunner().invoke(main, ["video", *map(str, args)], catch_exceptions=False)
    assert result.stdout == "", result.stdout
    return result.exit_code, result.stderr


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".part" in p.name]


# ----------------------------------------------------------------------------------------- timing and streams
def test_vfr_video_keeps_every_timestamp_duration_and_audio(tmp_path: Path) -> None:
    src = make_video(tmp_path / "vfr.mp4", pts_ms=VFR_MS, audio="aac", metadata={"title": "pan"}, rotation=90)
    code, out = run(src, "-m", "bicubic", "-s", "2", "--progress", "none")
    assert code == 0, out
    dst = tmp_path / "vfr_x2.mp4"
    a, b = probe(src), probe(dst)
    assert (b.width, b.height) == (2 * a.width, 2 * a.height)
    assert len(b.times) == len(a.times) == len(VFR_MS)
    assert b.times == pytest.approx([t / 1000 for t in VFR_MS], abs=1e-3)
    assert b.duration == pytest.approx(a.duration, abs=1e-3)
    assert b.streams == [("video", "h264"), ("audio", "aac")]
    assert b.packets[1] == a.packets[1] > 0  # audio copied packet for packet
    assert b.metadata.get("title") == "pan"
    assert b.rotation == a.rotation == 90
    assert leftovers(tmp_path) == []


def test_constant_rate_mkv_keeps_rate_and_frame_count(tmp_path: Path) -> None:
    src = make_video(tmp_path / "cfr.mkv", n=24, rate=24, audio="flac")
    code, out = run(src, "-m", "bicubic", "-s", "2", "-o", tmp_path / "out.mkv", "--progress", "none")
    assert code == 0, out
    a, b = probe(src), probe(tmp_path / "out.mkv")
    assert b.rate == a.rate == 24
    assert b.times == pytest.approx(a.times, abs=1e-3)
    assert b.duration == pytest.approx(a.duration, abs=1 / 24)
    assert ("audio", "flac") in b.streams and b.packets[1] == a.packets[1]


def test_audio_the_container_cannot_hold_is_transcoded_with_a_note(tmp_path: Path) -> None:
    src = make_video(tmp_path / "flac.mkv", audio="flac")
    code, out = run(src, "-m", "bicubic", "-s", "2", "-o", tmp_path / "out.mov", "--progress", "none")
    assert code == 0, out
    assert "transcoded to aac" in out
    b = probe(tmp_path / "out.mov")
    assert b.streams == [("video", "h264"), ("audio", "aac")]
    assert b.packets[1] > 0


def test_no_audio_drops_audio(tmp_path: Path) -> None:
    src = make_video(tmp_path / "a.mp4")
    code, out = run(src, "-m", "bicubic", "-s", "2", "--no-audio", "--progress", "none")
    assert code == 0, out
    assert probe(tmp_path / "a_x2.mp4").streams == [("video", "h264")]


def test_start_and_duration_cut_video_and_audio(tmp_path: Path) -> None:
    src = make_video(tmp_path / "long.mkv", n=24, rate=24, audio="aac")
    dst = tmp_path / "part.mkv"
    code, out = run(
        src, "-m", "bicubic", "-s", "2", "--start", "0.25", "--duration", "0:0.5", "-o", dst, "--progress", "none"
    )
    assert code == 0, out
    b = probe(dst)
    # frames at 6/24 s .. 17/24 s, shifted to start at 0
    assert b.times == pytest.approx([i / 24 - 0.25 for i in range(6, 18)], abs=2e-3)
    audio = b.packets[1]
    assert 0 < audio < probe(src).packets[1]


def test_progress_json_lines(tmp_path: Path) -> None:
    src = make_video(tmp_path / "p.mp4", n=12)
    code, out = run(src, "-m", "bicubic", "-s", "2", "--progress", "json")
    assert code == 0, out
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert records, out
    assert set(records[0]) >= {"frame", "total", "fps", "eta"}
    assert records[-1]["done"] is True and records[-1]["frame"] == records[-1]["total"] == 12


# ----------------------------------------------------------------------------------------- colour
PATCHES = [(220, 30, 40), (30, 200, 60), (40, 60, 210), (128, 128, 128), (230, 190, 150), (20, 20, 20)]


def patch_frame(size: tuple[int, int] = (96, 64)) -> np.ndarray:
    """Flat 32×32 patches of known colours (chroma subsampling cannot blur their middles)."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    for i, colour in enumerate(PATCHES):
        r, c = divmod(i, 3)
        img[r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32] = colour
    return img


@pytest.mark.parametrize(
    ("matrix", "full_range", "expect_matrix", "expect_range"),
    [(None, None, 6, 1), (1, False, 1, 1), (1, True, 1, 2), (5, False, 5, 1)],
    ids=["untagged-sd-is-601", "bt709", "bt709-full", "bt470bg"],
)
def test_colours_survive_with_the_tagged_matrix(
    tmp_path: Path, matrix: int | None, full_range: bool | None, expect_matrix: int, expect_range: int
) -> None:
    src = make_video(tmp_path / "c.mkv", [patch_frame()] * 4, matrix=matrix, full_range=full_range, audio=None)
    code, out = run(src, "-m", "bicubic", "-s", "2", "--progress", "none")
    assert code == 0, out
    b = probe(tmp_path / "c_x2.mkv", keep_frames=True)
    assert (b.colorspace, b.color_range) == (expect_matrix, expect_range)
    y, u, v = yuv_planes(b.frames[-1])
    u, v = (cv2.resize(p, (y.shape[1], y.shape[0]), interpolation=cv2.INTER_NEAREST) for p in (u, v))
    rgb = yuv_to_rgb_reference(y, u, v, matrix=expect_matrix, full_range=expect_range == 2)
    for i, colour in enumerate(PATCHES):
        r, c = divmod(i, 3)
        middle = rgb[r * 64 + 24 : r * 64 + 40, c * 64 + 24 : c * 64 + 40].reshape(-1, 3).mean(axis=0)
        assert np.abs(middle - colour).max() < 4, (colour, middle)


def test_wrong_matrix_would_be_visible(tmp_path: Path) -> None:
    """The colour test can tell matrices apart: BT.709 planes read as BT.601 miss by far more than its tolerance."""
    src = make_video(tmp_path / "c.mkv", [patch_frame()] * 2, matrix=1, full_range=False, audio=None)
    y, u, v = yuv_planes(probe(src, keep_frames=True).frames[0])
    u, v = (cv2.resize(p, (y.shape[1], y.shape[0]), interpolation=cv2.INTER_NEAREST) for p in (u, v))
    wrong = yuv_to_rgb_reference(y, u, v, matrix=6, full_range=False)[8:24, 8:24].reshape(-1, 3).mean(axis=0)
    assert np.abs(wrong - PATCHES[0]).max() > 10


def test_ten_bit_video_stays_ten_bit(tmp_path: Path) -> None:
    src = make_video(tmp_path / "deep.mkv", [patch_frame()] * 3, pix_fmt="yuv420p10le", matrix=1, audio=None)
    code, out = run(src, "-m", "bicubic", "-s", "2", "--progress", "none")
    assert code == 0, out
    b = probe(tmp_path / "deep_x2.mkv", keep_frames=True)
    assert b.pix_fmt == "yuv420p10le" and (b.width, b.height) == (192, 128)
    y, u, v = yuv_planes(b.frames[0])
    u, v = (cv2.resize(p, (y.shape[1], y.shape[0]), interpolation=cv2.INTER_NEAREST) for p in (u, v))
    rgb = yuv_to_rgb_reference(y, u, v, matrix=1, full_range=False, bits=10)
    assert np.abs(rgb[24:40, 24:40].reshape(-1, 3).mean(axis=0) - PATCHES[0]).max() < 4


def test_outscale_rounds_to_even_sides_with_a_note(tmp_path: Path) -> None:
    src = make_video(tmp_path / "odd.mp4", size=(66, 50), audio=None)
    code, out = run(src, "-m", "bicubic", "-s", "2", "--outscale", "1.5", "--progress", "none")
    assert code == 0, out
    assert "99x75 rounded to 100x76" in out
    b = probe(tmp_path / "odd_x1.5.mp4")
    assert (b.width, b.height) == (100, 76)


# ----------------------------------------------------------------------------------------- the luma path
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("left", [True, False], ids=["left-sited", "centred"])
@pytest.mark.parametrize("out_factor", [2, 1], ids=["to-420", "to-444"])
def test_chroma_samples_take_the_value_of_where_they_sit(scale: int, left: bool, out_factor: int) -> None:
    """A chroma plane holding each sample's own luma position must, resized, hold the output samples' positions
    mapped back to the input, as the upscaled luma is (pixel centres aligned)."""
    w, h = 48, 32
    cols = 2 * np.arange(w // 2) + (0.0 if left else 0.5)  # luma x of each chroma column
    rows = 2 * np.arange(h // 2) + 0.5  # 4:2:0 chroma is centred vertically
    out_w, out_h = w * scale // out_factor, h * scale // out_factor
    for axis, positions in ((1, cols), (0, rows)):
        plane = np.broadcast_to(positions[None, :] if axis else positions[:, None], (h // 2, w // 2))
        got = resize_chroma(
            np.ascontiguousarray(plane, np.float32),
            out_w,
            out_h,
            scale=(scale, scale),
            in_factor=(2, 2),
            out_factor=(out_factor, out_factor),
            left=left,
        )
        offset = (0.0 if left and axis else (out_factor - 1) / 2) if out_factor > 1 else 0.0
        out_pos = out_factor * np.arange(out_w if axis else out_h) + offset  # output luma of each sample
        expected = (out_pos + 0.5) / scale - 0.5
        line = got[out_h // 2] if axis else got[:, out_w // 2]
        error = (line - expected)[3 * scale : -3 * scale]  # away from the replicated border
        # OpenCV's cubic (a = -0.75) bends a ramp back and forth by up to 0.14 luma pixels, but on average
        # not at all; a siting slip would shift every sample by 0.25 luma pixels or more.
        assert abs(error.mean()) < 0.02 and np.abs(error).max() < 0.2


def _y_model_weights(tmp_path: Path, scale: int = 2) -> Path:
    loaded = build_model(REGISTRY.get("srcnn"), scale)
    path = tmp_path / "srcnn.safetensors"
    save_file({k: v.contiguous() for k, v in loaded.module.state_dict().items()}, str(path))
    return path


def test_y_model_upscales_luma_and_resizes_chroma_without_rgb(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", audio=None, pts_ms=VFR_MS)
    weights = _y_model_weights(tmp_path)
    dst = tmp_path / "out.mkv"
    code, out = run(
        src, "-m", "srcnn", "--weights", weights, "-s", "2", "--codec", "ffv1", "-o", dst, "--progress", "none"
    )
    assert code == 0, out
    a, b = probe(src, keep_frames=True), probe(dst, keep_frames=True)
    assert b.times == pytest.approx(a.times, abs=1e-3)
    assert (b.width, b.height, b.pix_fmt) == (128, 96, "yuv420p")
    sited = {"scale": (2, 2), "in_factor": (2, 2), "out_factor": (2, 2), "left": True}  # H.264's default siting
    for fa, fb in zip(a.frames, b.frames, strict=True):
        _, ua, va = yuv_planes(fa)
        _, ub, vb = yuv_planes(fb)
        for pa, pb in ((ua, ub), (va, vb)):  # chroma is the decoded plane resized, not rebuilt from RGB
            np.testing.assert_array_equal(resize_chroma(pa, 64, 48, **sited), pb)


Y_BICUBIC = ModelSpec(name="bicubic-y", build=Bicubic, scales=(2,), colour="y", margin_px=3, needs_weights=False)


@pytest.mark.parametrize("full_range", [False, True])
def test_luma_path_maps_studio_swing_both_ways(tmp_path: Path, full_range: bool) -> None:
    """With bicubic as a Y model the output Y must be the bicubic Y, whatever the range of the video."""
    src = make_video(
        tmp_path / "in.mkv", n=3, codec="ffv1", pix_fmt="yuv420p", audio=None, matrix=1, full_range=full_range
    )
    up = Upscaler(LoadedModel(Y_BICUBIC, Bicubic(scale=2), 2, None), EngineOptions(tile=0))
    dst = tmp_path / "out.mkv"
    upscale_video(src, dst, up, VideoOptions(encode=EncodeSettings(codec="ffv1")))
    a, b = probe(src, keep_frames=True), probe(dst, keep_frames=True)
    assert b.color_range == (2 if full_range else 1) and b.colorspace == 1
    for fa, fb in zip(a.frames, b.frames, strict=True):
        ya, yb = yuv_planes(fa)[0].astype(np.float64), yuv_planes(fb)[0].astype(np.float64)
        studio = (16 + ya * 219 / 255) / 255 if full_range else ya / 255
        up_y = imresize_np(studio, 2)
        expected = (up_y * 255 - 16) * 255 / 219 if full_range else up_y * 255
        assert np.abs(np.clip(np.rint(expected), 0, 255) - yb).max() <= 1


# ----------------------------------------------------------------------------------------- folders and failures
def test_folder_of_videos_with_a_bad_one_reports_and_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    make_video(folder / "one.mp4", n=6)
    make_video(folder / "two.mkv", n=6, audio=None)
    (folder / "broken.mp4").write_text("this is not a video\n")
    out_dir = tmp_path / "out"
    code, out = run(folder, "-m", "bicubic", "-s", "2", "-o", out_dir, "--progress", "none")
    assert code == 1
    assert sorted(p.name for p in out_dir.iterdir() if not p.name.startswith(".")) == ["one_x2.mp4", "two_x2.mkv"]
    assert f"Error: {folder / 'broken.mp4'}: not a readable video" in out
    assert "3 videos: 2 upscaled, 0 skipped, 1 failed" in out
    # the job stays recorded: a rerun takes up only what is unfinished
    code, out = run(folder, "-m", "bicubic", "-s", "2", "-o", out_dir, "--progress", "none")
    assert code == 1 and "3 videos: 0 upscaled, 2 done before, 0 skipped, 1 failed" in out, out


def _one_error_line(out: str) -> str:
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, out
    return errors[0]


def test_bad_inputs_give_one_line_naming_the_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("hello\n")
    code, out = run(text, "-m", "bicubic", "-s", "2")
    assert code == 1 and str(text) in _one_error_line(out) and "not a readable video" in out

    whole = make_video(tmp_path / "whole.mp4", n=12)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # mp4 keeps its index at the end
    code, out = run(cut, "-m", "bicubic", "-s", "2")
    assert code == 1 and str(cut) in _one_error_line(out)

    sound = tmp_path / "sound.mka"
    with av.open(str(sound), "w") as c:
        s = c.add_stream("flac", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        c.mux(s.encode(frame))
        c.mux(s.encode(None))
    code, out = run(sound, "-m", "bicubic", "-s", "2")
    assert code == 1 and f"{sound}: has no video stream" in _one_error_line(out)

    picture = tmp_path / "photo.png"
    cv2.imwrite(str(picture), pan_frames(1, (32, 32))[0])
    code, out = run(picture, "-m", "bicubic", "-s", "2")
    assert code == 1 and "is an image" in _one_error_line(out)

    code, out = run(tmp_path / "missing.mp4", "-m", "bicubic", "-s", "2")
    assert code == 1 and "missing.mp4: no such file" in _one_error_line(out)
    assert leftovers(tmp_path) == []


def test_codec_the_container_cannot_hold(tmp_path: Path) -> None:
    src = make_video(tmp_path / "a.mp4", n=4)
    code, out = run(src, "-m", "bicubic", "-s", "2", "-o", tmp_path / "a.webm", "--codec", "libx264")
    assert code == 1
    assert "webm" in _one_error_line(out) and "libx264" in out
    assert not (tmp_path / "a.webm").exists() and leftovers(tmp_path) == []


def test_unknown_encoder_and_nvenc_without_cuda(tmp_path: Path) -> None:
    src = make_video(tmp_path / "a.mp4", n=4)
    code, out = run(src, "-m", "bicubic", "-s", "2", "--codec", "nope264")
    assert code == 1 and "encoder 'nope264' is not available" in out
    if "h264_nvenc" in av.codecs_available:
        code, out = run(src, "-m", "bicubic", "-s", "2", "--codec", "h264_nvenc", "--device", "cpu")
        assert code == 1 and "needs the engine on a CUDA device" in out


def test_existing_output_needs_overwrite_and_inputs_are_never_replaced(tmp_path: Path) -> None:
    src = make_video(tmp_path / "a.mp4", n=4)
    dst = tmp_path / "a_x2.mp4"
    dst.write_bytes(b"old")
    code, out = run(src, "-m", "bicubic", "-s", "2")
    assert code == 1 and f"{dst}: exists (use --overwrite or --skip-existing)" in _one_error_line(out)
    assert dst.read_bytes() == b"old"
    code, out = run(src, "-m", "bicubic", "-s", "2", "--skip-existing")
    assert code == 0 and dst.read_bytes() == b"old"
    code, out = run(src, "-m", "bicubic", "-s", "2", "--overwrite", "--progress", "none")
    assert code == 0 and len(probe(dst).times) == 4
    before = src.read_bytes()
    code, out = run(src, "-m", "bicubic", "-s", "2", "-o", src, "--overwrite")
    assert code == 1 and "is an input" in out and src.read_bytes() == before


def test_corrupt_frames_in_the_middle_are_reported_and_skipped(tmp_path: Path) -> None:
    src = make_video(tmp_path / "m.mkv", n=24, codec="mjpeg", pix_fmt="yuvj420p", audio=None)
    with av.open(str(src)) as c:
        packets = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    pos, size = packets[12]
    data = bytearray(src.read_bytes())
    data[pos + 8 : pos + size - 8] = np.random.default_rng(1).integers(0, 256, size - 16, dtype=np.uint8).tobytes()
    src.write_bytes(bytes(data))
    code, out = run(src, "-m", "bicubic", "-s", "2", "--progress", "none")
    assert code == 0, out
    assert "corrupt video data at 0.500s skipped" in out
    assert len(probe(tmp_path / "m_x2.mkv").times) == 23


def _fail_after(n: int, exc: BaseException, monkeypatch: pytest.MonkeyPatch) -> None:
    real = VideoWriter.write

    def write(self: VideoWriter, *args: object, **kwargs: object) -> None:
        if self.frames_written == n:
            raise exc
        real(self, *args, **kwargs)

    monkeypatch.setattr(VideoWriter, "write", write)


def test_failure_part_way_removes_the_temp_file_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_video(tmp_path / "a.mp4", n=12)
    _fail_after(5, OSError(28, "No space left on device"), monkeypatch)
    code, out = run(src, "-m", "bicubic", "-s", "2", "--progress", "none")
    assert code == 1
    line = _one_error_line(out)
    assert "No space left on device" in line and "stopped after 5 frames" in line
    assert "a_x2.mp4 not written (temporary file removed)" in line
    assert not (tmp_path / "a_x2.mp4").exists() and leftovers(tmp_path) == []


def test_ctrl_c_stops_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_video(tmp_path / "a.mp4", n=12)
    second = make_video(tmp_path / "b.mp4", n=4)
    _fail_after(3, KeyboardInterrupt(), monkeypatch)
    code, out = run(first, second, "-m", "bicubic", "-s", "2", "--progress", "none")
    assert code == 130
    assert "Interrupted after 3 frames" in out and "temporary file removed" in out
    assert not (tmp_path / "a_x2.mp4").exists() and not (tmp_path / "b_x2.mp4").exists()
    assert leftovers(tmp_path) == []


def test_frames_stay_bounded_in_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoding may not run ahead of encoding by more than the queues hold (memory stays flat)."""
    src = make_video(tmp_path / "a.mkv", n=40, audio=None)
    decoded: list[int] = []
    lead: list[int] = []
    real_prepare = streaming.make_frame_path

    def counting_path(*args: object, **kwargs: object) -> object:
        path = real_prepare(*args, **kwargs)
        prepare = path.prepare

        def counted(frame: av.VideoFrame) -> object:
            decoded.append(1)
            return prepare(frame)

        path.prepare = counted  # type: ignore[method-assign]
        return path

    monkeypatch.setattr(streaming, "make_frame_path", counting_path)
    up = Upscaler(build_model(REGISTRY.get("bicubic"), 2), EngineOptions(batch_size=2))
    opts = VideoOptions(queue_depth=2)
    upscale_video(src, tmp_path / "o.mkv", up, opts, on_progress=lambda done: lead.append(len(decoded) - done))
    assert len(decoded) == 40
    # queues of 2 between 3 stages, plus frames held inside stages (engine batch, encoder hand-off)
    assert max(lead) <= 3 * opts.queue_depth + up.batch_size + 3


def test_cut_off_file_is_upscaled_as_far_as_it_goes_then_reported(tmp_path: Path) -> None:
    whole = make_video(tmp_path / "whole.mkv", n=72, rate=24)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    code, out = run(cut, "-m", "bicubic", "-s", "2", "--progress", "none")
    assert code == 1, out
    assert f"{cut}: input ends early at " in _one_error_line(out)
    assert 10 < len(probe(tmp_path / "cut_x2.mkv").times) < 72


def test_pixel_format_and_aspect_ratio(tmp_path: Path) -> None:
    src = make_video(tmp_path / "a.mkv", n=4, audio=None)
    anamorphic = tmp_path / "sar.mkv"
    with av.open(str(anamorphic), "w") as out, av.open(str(src)) as c:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(4, 3)
        for frame in c.decode(video=0):
            frame.pict_type = av.video.frame.PictureType.NONE
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    code, out = run(anamorphic, "-m", "bicubic", "-s", "2", "--pix-fmt", "yuv444p", "--progress", "none")
    assert code == 0, out
    with av.open(str(tmp_path / "sar_x2.mkv")) as c:
        v = c.streams.video[0]
        assert v.codec_context.sample_aspect_ratio == Fraction(4, 3)
        assert v.codec_context.pix_fmt == "yuv444p" and (v.width, v.height) == (128, 96)
    code, out = run(src, "-m", "bicubic", "-s", "2", "--pix-fmt", "rgb48le")
    assert code == 1 and "does not take pixel format 'rgb48le'" in _one_error_line(out)


def test_outputs_that_would_collide_are_named_apart(tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    make_video(folder / "clip.mp4", n=4, audio=None)
    make_video(folder / "clip.mkv", n=4, audio=None)
    code, out = run(folder, "-m", "bicubic", "-s", "2", "--container", "mp4", "--overwrite", "--progress", "none")
    assert code == 0, out
    assert "carry their source's extension" in out and "2 upscaled" in out
    assert sorted(p.name for p in folder.glob("*_x2.mp4")) == ["clip_mkv_x2.mp4", "clip_mp4_x2.mp4"]
    # a second run does not take the first run's output for another input
    code, out = run(folder, "-m", "bicubic", "-s", "2", "-o", tmp_path / "one.mp4")
    assert code == 2 and "names one file, but there are 2 videos" in out


def test_two_devices_give_the_one_device_video(tmp_path: Path) -> None:
    """Frames dealt to two engines (``--device cpu,cpu``, as ``cuda:0,cuda:1``) come back in order."""
    src = make_video(tmp_path / "in.mp4", audio="aac", pts_ms=VFR_MS)
    weights = _y_model_weights(tmp_path)
    for name, device in (("one.mp4", "cpu"), ("two.mp4", "cpu,cpu")):
        code, out = run(src, "-m", "srcnn", "-s", "2", "--weights", weights, "--device", device, "-o", tmp_path / name)
        assert code == 0, out
    a, b = probe(tmp_path / "one.mp4"), probe(tmp_path / "two.mp4")
    assert b.times == a.times and b.packets == a.packets
    with av.open(str(tmp_path / "one.mp4")) as one, av.open(str(tmp_path / "two.mp4")) as two:
        for fa, fb in zip(one.decode(video=0), two.decode(video=0), strict=True):
            assert np.array_equal(fa.to_ndarray(format="rgb24"), fb.to_ndarray(format="rgb24"))
