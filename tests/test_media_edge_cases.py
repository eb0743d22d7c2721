"""Files users really have, through ``upscale images`` and ``upscale video``: print (CMYK) JPEGs with
their profile, PNGs whose EXIF follows the pixels, broken EXIF, animations asked for as JPEG on a pipe,
transparent GIFs, and subtitles on screen where a cut starts."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import ExifTags, Image, ImageCms

from tests.conftest import photo
from tests.media import make_video
from upscale.cli import main

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
TAG = ExifTags.Base


def profile_for(space: bytes) -> bytes:
    """An ICC profile whose header declares the colour space ``space`` (b"CMYK", b"GRAY")."""
    icc = bytearray(SRGB)
    icc[16:20] = space
    return bytes(icc)


def run(*args: str | Path, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(
        main, ["images", *map(str, args), "-m", "bicubic", "-s", "2"], input=stdin, catch_exceptions=False
    )


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".part" in p.name]


# ---------------------------------------------------------------------------------------- colour profiles
def test_cmyk_jpeg_profile_is_not_put_into_the_rgb_output(tmp_path: Path) -> None:
    rgb = photo("coffee", (48, 32))
    src = tmp_path / "print.jpg"
    Image.fromarray(rgb).convert("CMYK").save(src, quality=95, icc_profile=profile_for(b"CMYK"))
    result = run(src, "--format", "png")
    assert result.exit_code == 0, result.output
    out = Image.open(tmp_path / "print_x2.png")
    assert out.mode == "RGB" and out.size == (96, 64)
    assert "icc_profile" not in out.info  # a CMYK profile does not describe RGB pixels
    assert "ICC profile not copied: it is for CMYK pixels, the output's are RGB" in result.stderr
    reference = np.asarray(Image.open(src).convert("RGB"), np.float64)
    small = np.asarray(out.resize((48, 32), Image.BOX), np.float64)
    assert np.abs(small - reference).mean() < 4


def test_grey_profile_is_kept_for_grey_outputs_only(tmp_path: Path) -> None:
    src = tmp_path / "scan.jpg"
    Image.fromarray(photo("camera", (40, 32))[..., 0]).save(src, icc_profile=profile_for(b"GRAY"))
    assert run(src, "--format", "png").exit_code == 0
    png = Image.open(tmp_path / "scan_x2.png")
    assert png.mode == "L" and png.info["icc_profile"] == profile_for(b"GRAY")
    result = run(src, "--format", "webp")  # WebP has no grey: its pixels are RGB
    assert result.exit_code == 0, result.output
    assert "icc_profile" not in Image.open(tmp_path / "scan_x2.webp").info
    rgb = tmp_path / "photo.jpg"
    Image.fromarray(photo("coffee", (40, 32))).save(rgb, icc_profile=SRGB)
    assert run(rgb, "--format", "webp").exit_code == 0
    assert Image.open(tmp_path / "photo_x2.webp").info["icc_profile"] == SRGB


def test_transparent_png_as_jpeg_is_flattened_onto_white(tmp_path: Path) -> None:
    logo = np.zeros((32, 48, 4), np.uint8)  # transparent pixels hide black, as most editors store them
    logo[:, 24:] = (200, 30, 30, 255)
    logo[:, 20:24, :3], logo[:, 20:24, 3] = (200, 30, 30), 128  # a half-transparent edge
    src = tmp_path / "logo.png"
    Image.fromarray(logo, "RGBA").save(src)
    result = run(src, "--format", "jpg")
    assert result.exit_code == 0, result.output
    out = np.asarray(Image.open(tmp_path / "logo_x2.jpg").convert("RGB"), np.float64)
    assert np.abs(out[:, :32] - 255).max() < 8  # the transparent part is white, not what it hid
    assert np.abs(out[:, 56:] - (200, 30, 30)).max() < 12
    assert np.abs(out[:, 42:46] - (228, 142, 142)).max() < 12  # half red, half white


# -------------------------------------------------------------------------------------------------- EXIF
def png_with_exif_after_pixels(path: Path, rgb: np.ndarray, exif: Image.Exif) -> None:
    """A PNG whose eXIf chunk follows IDAT, as some writers place it."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    data = buf.getvalue()
    tiff = exif.tobytes().removeprefix(b"Exif\x00\x00")
    chunk = struct.pack(">I", len(tiff)) + b"eXIf" + tiff + struct.pack(">I", zlib.crc32(b"eXIf" + tiff))
    path.write_bytes(data[:-12] + chunk + data[-12:])  # before IEND


def test_png_exif_after_the_pixels_is_applied_and_copied(tmp_path: Path) -> None:
    stored = photo("astronaut", (24, 40))  # a portrait photo stored sideways
    exif = Image.Exif()
    exif[TAG.Orientation], exif[TAG.Make] = 6, "TestCam"
    src = tmp_path / "shot.png"
    png_with_exif_after_pixels(src, stored, exif)
    result = run(src)
    assert result.exit_code == 0, result.output
    out = Image.open(tmp_path / "shot_x2.png")
    assert out.size == (80, 48)  # upright: 40×24, doubled
    tags = out.getexif()
    assert tags[TAG.Make] == "TestCam" and TAG.Orientation not in tags
    upright = np.rot90(stored, -1)
    small = np.asarray(out.resize((40, 24), Image.BOX), np.float64)
    assert np.abs(small - upright).mean() < 6


@pytest.mark.parametrize("orientation", [3, 6])
def test_tiff_orientation_is_applied_once(tmp_path: Path, orientation: int) -> None:
    stored = photo("coffee", (40, 24))
    upright = {3: stored[::-1, ::-1], 6: np.rot90(stored, -1)}[orientation]
    src = tmp_path / "scan.tif"
    Image.fromarray(stored).save(src, compression="tiff_lzw", tiffinfo={TAG.Orientation: orientation})
    result = run(src)
    assert result.exit_code == 0, result.output
    out = Image.open(tmp_path / "scan_x2.tif")
    h, w = upright.shape[:2]
    assert out.size == (2 * w, 2 * h)
    small = np.asarray(out.convert("RGB").resize((w, h), Image.BOX), np.float64)
    assert np.abs(small - upright).mean() < 6


def test_broken_exif_is_read_without_python_warnings(tmp_path: Path) -> None:
    src = tmp_path / "odd.jpg"
    broken = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff\x01\x02"  # IFD0 promises 65535 entries
    Image.fromarray(photo("coffee", (32, 24))).save(src, exif=broken)
    # a real process: pytest would catch the warnings
    args = [sys.executable, "-m", "upscale", "images", str(src), "-m", "bicubic", "-s", "2", "-q"]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert Image.open(tmp_path / "odd_x2.jpg").size == (64, 48)


# ------------------------------------------------------------------------------------------- animations
def transparent_gif(path: Path) -> list[int]:
    """A three-frame GIF: a square moving over a transparent canvas, the second frame kept under the
    third; returns how many pixels each frame shows."""
    palette = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 252 * 3
    frames = []
    for i in range(3):
        frame = Image.new("P", (32, 24), 0)
        frame.putpalette(palette)
        frame.paste(i + 1, (i * 8, 4, i * 8 + 10, 14))
        frames.append(frame)
    timing = {"duration": [100, 200, 300], "loop": 0, "disposal": [2, 1, 2]}
    frames[0].save(path, save_all=True, append_images=frames[1:], transparency=0, **timing)
    shown = []
    with Image.open(path) as img:
        for i in range(img.n_frames):
            img.seek(i)
            shown.append(int((np.asarray(img.convert("RGBA"))[..., 3] > 0).sum()))
    return shown


def test_transparent_gif_edges_get_no_opaque_fringe(tmp_path: Path) -> None:
    src = tmp_path / "sprite.gif"
    shown = transparent_gif(src)
    assert shown == [100, 100, 180]
    result = run(src)
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "sprite_x2.gif") as out:
        assert out.n_frames == 3
        for i, n in enumerate(shown):
            out.seek(i)
            alpha = np.asarray(out.convert("RGBA"))[..., 3]
            assert (alpha > 0).sum() == 4 * n, f"frame {i}"


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_animation_asked_for_as_jpeg_on_a_pipe_is_a_one_line_error(tmp_path: Path, how: str) -> None:
    src = tmp_path / "sprite.gif"
    transparent_gif(src)
    if how == "file":
        result = run(src, "-o", "-", "--format", "jpg")
        name = str(src)
    else:
        result = run("-", "-o", tmp_path / "out.jpg", stdin=src.read_bytes())
        name = "<stdin>"
    assert result.exit_code == 1
    assert result.stdout_bytes == b""
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: {name}: an animation of 3 frames cannot be written as .jpg; write .png, .gif or .webp"
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.jpg").exists() and leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------ video
def test_subtitle_on_screen_where_the_cut_starts_is_kept(tmp_path: Path) -> None:
    base = make_video(tmp_path / "base.mkv", n=24, audio=None)
    src = tmp_path / "film.mkv"
    ms = Fraction(1, 1000)
    with av.open(str(base)) as c, av.open(str(src), "w") as out:
        video = out.add_stream_from_template(c.streams.video[0])
        subs = out.add_mux_stream("subrip")
        subs.metadata["language"] = "ger"
        for packet in c.demux():
            if packet.size:
                packet.stream = video
                out.mux(packet)
        for start, text in [(0, "Eins"), (300, "Zwei"), (600, "Drei")]:
            cue = av.Packet(text.encode())
            cue.pts = cue.dts = start
            cue.duration, cue.time_base, cue.stream = 200, ms, subs
            out.mux(cue)
    dst = tmp_path / "cut.mkv"
    args = ["video", str(src), "-o", str(dst), "-m", "bicubic", "-s", "2", "--progress", "none"]
    result = CliRunner().invoke(main, [*args, "--start", "0.35", "--duration", "0.5"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with av.open(str(dst)) as c:
        (stream,) = c.streams.subtitles
        assert stream.metadata.get("language") == "ger"
        cues = [
            (bytes(p).decode(), float(p.pts * p.time_base), float(p.duration * p.time_base))
            for p in c.demux(stream)
            if p.size
        ]
    # "Zwei" shows from 0.30 to 0.50 s: its last 0.15 s fall in the cut; "Drei" moves from 0.60 to 0.25 s
    assert cues == [("Zwei", 0.0, pytest.approx(0.15)), ("Drei", pytest.approx(0.25), pytest.approx(0.2))]


def test_audio_track_titles_and_languages_survive_mp4_to_mp4(tmp_path: Path) -> None:
    base = make_video(tmp_path / "base.mp4", n=12, audio="aac")
    src = tmp_path / "talk.mp4"
    tracks = [("eng", None), ("fra", "Commentaire")]
    with av.open(str(base)) as c, av.open(str(src), "w") as out:
        video = out.add_stream_from_template(c.streams.video[0])
        audio = []
        for language, title in tracks:
            stream = out.add_stream_from_template(c.streams.audio[0])
            stream.metadata["language"] = language
            if title:
                stream.metadata["title"] = title
            audio.append(stream)
        for packet in c.demux():
            if not packet.size:
                continue
            if packet.stream.type == "video":
                packet.stream = video
                out.mux(packet)
                continue
            for stream in audio:
                copy = av.Packet(bytes(packet))
                copy.pts, copy.dts, copy.duration = packet.pts, packet.dts, packet.duration
                copy.time_base = packet.time_base
                copy.stream = stream
                out.mux(copy)
    args = ["video", str(src), "-m", "bicubic", "-s", "2", "--progress", "none"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with av.open(str(tmp_path / "talk_x2.mp4")) as c:
        found = [(s.metadata.get("language"), s.metadata.get("name")) for s in c.streams.audio]
    assert found == tracks  # mp4 reads a track's title back as "name"
