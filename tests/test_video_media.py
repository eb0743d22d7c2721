"""``upscale video`` on what real files carry: cut-off inputs, containers with subtitles, chapters and
attachments, HEVC tags, encoder banners, and options that contradict each other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import pytest
from click.testing import CliRunner

from tests.media import make_video, probe
from upscale.cli import main

FONT = b"\x00\x01\x00\x00 not really a font " * 8
CHAPTERS = [("Opening", 0, 250), ("Rest", 250, 500)]
"""(title, start ms, end ms)."""


def run(*args: str | Path) -> tuple[int, str]:
    """Exit code and stderr of ``upscale video ARGS``; stdout must stay empty."""
    result = CliRunner().invoke(main, ["video", *map(str, args)], catch_exceptions=False)
    assert result.stdout == "", result.stdout
    return result.exit_code, result.stderr


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Error:")]


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".part" in p.name]


def faststart(src: Path, dst: Path) -> Path:
    """``src`` remuxed with its index (moov) ahead of the media data, as web and camera files often are."""
    with av.open(str(src)) as c, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in c.streams}
        for packet in c.demux():
            if packet.size:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return dst


def rich_mkv(tmp_path: Path) -> Path:
    """A Matroska file with video, FLAC audio, a SubRip subtitle stream, two chapters and a font attachment."""
    base = make_video(tmp_path / "base.mkv", n=12, audio="flac")
    dst = tmp_path / "film.mkv"
    with av.open(str(base)) as c, av.open(str(dst), "w") as out:
        video = out.add_stream_from_template(c.streams.video[0])
        audio = out.add_stream_from_template(c.streams.audio[0])
        subs = out.add_mux_stream("subrip")
        subs.metadata["language"] = "eng"
        out.add_attachment("font.ttf", "font/ttf", FONT)
        ms = Fraction(1, 1000)
        out.set_chapters(
            [
                {"id": i + 1, "start": a, "end": b, "time_base": ms, "metadata": {"title": t}}
                for i, (t, a, b) in enumerate(CHAPTERS)
            ]
        )
        for packet in c.demux():
            if packet.size:
                packet.stream = video if packet.stream.type == "video" else audio
                out.mux(packet)
        for i, text in enumerate(["Hello", "World"]):
            cue = av.Packet(text.encode())
            cue.pts = cue.dts = i * 200
            cue.duration, cue.time_base, cue.stream = 150, ms, subs
            out.mux(cue)
    base.unlink()
    return dst


def chapter_titles(path: Path) -> list[tuple[str, float, float]]:
    with av.open(str(path)) as c:
        return [
            (ch["metadata"].get("title", ""), float(ch["start"] * ch["time_base"]), float(ch["end"] * ch["time_base"]))
            for ch in c.chapters()
        ]


# ----------------------------------------------------------------------------------------- cut-off inputs
def test_cut_off_mp4_with_its_index_up_front_is_finished_then_reported(tmp_path: Path) -> None:
    intra = {"crf": "10", "g": "1"}  # frames of similar size, so a cut at 40 % keeps about 40 % of them
    whole = faststart(make_video(tmp_path / "w.mp4", n=50, rate=25, audio=None, options=intra), tmp_path / "f.mp4")
    cut = tmp_path / "in.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 5])
    code, out = run(cut, "-m", "bicubic", "-s", "2", "--progress", "json")
    assert code == 1, out
    (line,) = error_lines(out)
    assert line.startswith(f"Error: {cut}: input ends early at ") and " s of 2.00 s" in line, line
    assert "--allow-truncated" in line
    records = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert records and not any(r.get("done") is True for r in records), records
    assert "input ends early" in records[-1]["error"]
    # what could be decoded is a complete, playable file lasting as long as its frames
    b = probe(tmp_path / "in_x2.mp4")
    assert 5 < len(b.times) < 50 and (b.width, b.height) == (128, 96)
    assert b.duration == pytest.approx(len(b.times) / 25, abs=0.1)
    reported_s = float(line.split("input ends early at ")[1].split()[0])
    assert reported_s == pytest.approx(b.duration, abs=0.05)
    assert leftovers(tmp_path) == []

    code, out = run(cut, "-m", "bicubic", "-s", "2", "--progress", "json", "--allow-truncated", "--overwrite")
    assert code == 0, out
    assert error_lines(out) == [] and "input ends early" in out
    records = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert records[-1]["done"] is True and records[-1]["frame"] == len(b.times)


def test_complete_faststart_mp4_is_not_taken_for_a_cut_one(tmp_path: Path) -> None:
    src = faststart(make_video(tmp_path / "whole.mp4", n=20, rate=25), tmp_path / "fast.mp4")
    code, out = run(src, "-m", "bicubic", "-s", "2", "--progress", "none")
    assert code == 0, out
    assert "ends early" not in out
    assert len(probe(tmp_path / "fast_x2.mp4").times) == 20


# ----------------------------------------------------------------------------------------- containers and streams
def test_mkv_keeps_its_container_subtitles_chapters_and_attachments(tmp_path: Path) -> None:
    src = rich_mkv(tmp_path)
    code, out = run(src, "-m", "bicubic", "-s", "2", "--progress", "none")
    assert code == 0, out
    assert "dropped" not in out
    dst = tmp_path / "film_x2.mkv"
    assert not (tmp_path / "film_x2.mp4").exists()
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video", "audio", "subtitle", "attachment"]
        subs = c.streams.subtitles[0]
        assert subs.metadata.get("language") == "eng"
        font = c.streams[3]
        assert (font.name, font.mimetype, bytes(font.data)) == ("font.ttf", "font/ttf", FONT)
        cues = [(bytes(p), float(p.pts * p.time_base)) for p in c.demux(subs) if p.size]
    assert cues == [(b"Hello", 0.0), (b"World", 0.2)]
    assert chapter_titles(dst) == [(t, a / 1000, b / 1000) for t, a, b in CHAPTERS]
    assert probe(dst).streams[:2] == [("video", "h264"), ("audio", "flac")]


def test_mp4_output_keeps_chapters_and_names_each_dropped_stream(tmp_path: Path) -> None:
    src = rich_mkv(tmp_path)
    code, out = run(src, "-m", "bicubic", "-s", "2", "-o", tmp_path / "out.mp4", "--progress", "none")
    assert code == 0, out
    assert "subtitle stream 2 (srt) dropped: mp4 cannot hold it" in out
    assert "attachment stream 3 (font.ttf) dropped: mp4 cannot hold it" in out
    assert [t for t, _, _ in chapter_titles(tmp_path / "out.mp4")] == ["Opening", "Rest"]
    assert [s[0] for s in probe(tmp_path / "out.mp4").streams][:2] == ["video", "audio"]
    assert "subtitle" not in [s[0] for s in probe(tmp_path / "out.mp4").streams]
    # mp4 keeps its chapters in a track of its own, which is not taken for a stream dropped when read back
    code, out = run(tmp_path / "out.mp4", "-m", "bicubic", "-s", "1", "--progress", "none")
    assert code == 0 and "dropped" not in out, out


def test_start_shifts_chapters_to_the_output_time_line(tmp_path: Path) -> None:
    src = rich_mkv(tmp_path)
    code, out = run(src, "-m", "bicubic", "-s", "2", "--start", "0.3", "--progress", "none")
    assert code == 0, out
    assert chapter_titles(tmp_path / "film_x2.mkv") == [("Rest", 0.0, pytest.approx(0.2, abs=1e-3))]


def test_duration_clips_chapters_and_drops_those_after_it(tmp_path: Path) -> None:
    src = rich_mkv(tmp_path)
    args = ["-m", "bicubic", "-s", "2", "--progress", "none"]
    code, out = run(src, *args, "--duration", "0.2", "-o", tmp_path / "head.mkv")
    assert code == 0, out
    assert chapter_titles(tmp_path / "head.mkv") == [("Opening", 0.0, pytest.approx(0.2, abs=1e-3))]
    code, out = run(src, *args, "--start", "0.1", "--duration", "0.3", "-o", tmp_path / "middle.mkv")
    assert code == 0, out
    assert chapter_titles(tmp_path / "middle.mkv") == [
        ("Opening", 0.0, pytest.approx(0.15, abs=1e-3)),
        ("Rest", pytest.approx(0.15, abs=1e-3), pytest.approx(0.3, abs=1e-3)),
    ]


def test_mov_stays_mov_and_webm_falls_back_to_mp4_for_h264(tmp_path: Path) -> None:
    mov = make_video(tmp_path / "clip.mov", n=6, audio=None)
    code, out = run(mov, "-m", "bicubic", "-s", "2", "--progress", "none")
    assert code == 0, out
    assert (tmp_path / "clip_x2.mov").exists() and not (tmp_path / "clip_x2.mp4").exists()
    assert probe(tmp_path / "clip_x2.mov").width == 128

    webm = make_video(tmp_path / "web.webm", n=4, codec="libvpx-vp9", audio=None, options={})
    code, out = run(webm, "-m", "bicubic", "-s", "2", "--progress", "none")
    assert code == 0, out
    assert "webm cannot hold libx264 video; writing .mp4" in out
    assert probe(tmp_path / "web_x2.mp4").streams == [("video", "h264")]
    code, out = run(webm, "-m", "bicubic", "-s", "2", "--codec", "libvpx-vp9", "--progress", "none", "--crf", "40")
    assert code == 0, out
    assert probe(tmp_path / "web_x2.webm").streams == [("video", "vp9")]


# ----------------------------------------------------------------------------------------- encoders
needs_x265 = pytest.mark.skipif("libx265" not in av.codecs_available, reason="PyAV's FFmpeg has no libx265")


@needs_x265
def test_hevc_in_mp4_is_tagged_hvc1(tmp_path: Path) -> None:
    src = make_video(tmp_path / "a.mp4", n=4, audio=None)
    code, out = run(src, "-m", "bicubic", "-s", "2", "--codec", "libx265", "-o", tmp_path / "b.mp4", "-q")
    assert code == 0, out
    with av.open(str(tmp_path / "b.mp4")) as c:
        assert c.streams.video[0].codec_context.codec_tag == "hvc1"


@pytest.mark.parametrize("codec", ["libx265", "libsvtav1"])
def test_quiet_run_leaves_stderr_empty_even_for_chatty_encoders(tmp_path: Path, codec: str) -> None:
    if codec not in av.codecs_available:
        pytest.skip(f"PyAV's FFmpeg has no {codec}")
    src = make_video(tmp_path / "a.mp4", n=4, audio=None)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("SVT_LOG", None)
    args = [sys.executable, "-m", "upscale", "video", str(src), "-m", "bicubic", "-s", "2", "--codec", codec, "-q"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout == ""
    assert probe(tmp_path / "a_x2.mp4").width == 128


# ----------------------------------------------------------------------------------------- contradictions
def test_contradicting_options_are_usage_errors(tmp_path: Path) -> None:
    src = make_video(tmp_path / "a.mp4", n=4, audio=None)
    code, out = run(src, "-m", "bicubic", "-s", "2", "--crf", "20", "--bitrate", "2M")
    assert code == 2 and "--crf and --bitrate exclude each other" in out
    code, out = run(src, "-m", "bicubic", "-s", "2", "--container", "mkv", "-o", tmp_path / "out.mp4")
    assert code == 2 and "--container mkv disagrees with -o" in out and "out.mp4" in out
    assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "a_x2.mp4").exists()
    # agreeing ones still run
    code, out = run(src, "-m", "bicubic", "-s", "2", "--container", "mkv", "-o", tmp_path / "out.mkv", "-q")
    assert code == 0, out
    assert probe(tmp_path / "out.mkv").width == 128


def test_rounding_to_even_sides_is_said_once(tmp_path: Path) -> None:
    src = make_video(tmp_path / "odd.mp4", n=8, size=(66, 50), audio=None)
    code, out = run(src, "-m", "bicubic", "-s", "2", "--outscale", "1.5", "--progress", "none")
    assert code == 0, out
    assert out.count("99x75 rounded to 100x76") == 1, out
