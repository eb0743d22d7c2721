"""Real-world image files through ``upscale images``: EXIF orientation, ICC and EXIF carried over,
formats only Pillow reads, and animations with every frame."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import ExifTags, Image, ImageCms

from tests.conftest import photo, read_rgb
from upscale.cli import main

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
IFD = ExifTags.IFD
TAG = ExifTags.Base


def run(*args: str):
    return CliRunner().invoke(main, ["images", *args, "-m", "bicubic", "-s", "2"], catch_exceptions=False)


def exif_bytes(width: int, height: int, *, orientation: int | None = None) -> bytes:
    """Camera-like EXIF: make, model, date, DPI, GPS, the Exif IFD with the pixel size, and a
    thumbnail IFD (IFD1) linked after IFD0."""
    exif = Image.Exif()
    exif[TAG.Make], exif[TAG.Model], exif[TAG.DateTime] = "TestCam", "Model 7", "2024:05:06 07:08:09"
    exif[TAG.XResolution], exif[TAG.YResolution], exif[TAG.ResolutionUnit] = 300.0, 300.0, 2
    if orientation is not None:
        exif[TAG.Orientation] = orientation
    exif[IFD.Exif] = {
        TAG.DateTimeOriginal: "2024:05:06 07:08:09",
        TAG.ExifImageWidth: width,
        TAG.ExifImageHeight: height,
    }
    exif[IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (48.0, 51.0, 24.0)}
    tiff = bytearray(exif.tobytes()[6:])
    order = "<" if tiff[:2] == b"II" else ">"
    next_at = 8 + 2 + 12 * struct.unpack_from(order + "H", tiff, 8)[0]
    tiff += b"\x00" * (len(tiff) & 1)
    struct.pack_into(order + "I", tiff, next_at, len(tiff))
    tiff += struct.pack(order + "HHHIHHI", 1, TAG.Compression, 3, 1, 6, 0, 0)
    return b"Exif\x00\x00" + bytes(tiff)


def test_exif_helper_makes_a_thumbnail_ifd() -> None:
    exif = Image.Exif()
    exif.load(exif_bytes(8, 8))
    assert exif[TAG.Make] == "TestCam" and exif.get_ifd(IFD.IFD1) == {TAG.Compression: 6}


# Upright 32×16 picture: four coloured quadrants.
QUADRANTS = {"tl": (255, 0, 0), "tr": (0, 255, 0), "bl": (0, 0, 255), "br": (255, 255, 255)}
# How a camera stores the upright picture for each orientation (the inverse of what viewers apply).
STORED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def quadrant_picture(w: int = 32, h: int = 16) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2], img[: h // 2, w // 2 :] = QUADRANTS["tl"], QUADRANTS["tr"]
    img[h // 2 :, : w // 2], img[h // 2 :, w // 2 :] = QUADRANTS["bl"], QUADRANTS["br"]
    return img


def quadrant_means(img: np.ndarray) -> dict[str, np.ndarray]:
    """The mean colour at the centre of each quadrant, away from JPEG and resampling edges."""
    h, w = img.shape[:2]
    ys, xs = {"t": h // 4, "b": 3 * h // 4}, {"l": w // 4, "r": 3 * w // 4}
    dy, dx = h // 8, w // 8
    return {y + x: img[ys[y] - dy : ys[y] + dy, xs[x] - dx : xs[x] + dx].mean((0, 1)) for y in ys for x in xs}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_output_is_upright_without_the_tag(tmp_path: Path, orientation: int) -> None:
    stored = Image.fromarray(quadrant_picture())
    if STORED[orientation] is not None:
        stored = stored.transpose(STORED[orientation])
    src = tmp_path / "phone.jpg"
    stored.save(src, "JPEG", quality=95, exif=exif_bytes(*stored.size, orientation=orientation))
    result = run(str(src))
    assert result.exit_code == 0, result.output
    out = read_rgb(tmp_path / "phone_x2.jpg")  # OpenCV ignores EXIF orientation with IMREAD_UNCHANGED
    assert out.shape == (32, 64, 3)
    for name, mean in quadrant_means(out).items():
        assert np.abs(mean - QUADRANTS[name]).max() < 24, (name, mean)
    with Image.open(tmp_path / "phone_x2.jpg") as img:
        exif = img.getexif()
    assert exif.get(TAG.Orientation, 1) == 1 and exif[TAG.Make] == "TestCam"


def save_with_metadata(path: Path, rgb: np.ndarray, fmt: str, icc: bytes = ICC) -> None:
    h, w = rgb.shape[:2]
    extra = {"lossless": True} if fmt == "WEBP" else {"quality": 95} if fmt == "JPEG" else {}
    Image.fromarray(rgb).save(path, fmt, icc_profile=icc, exif=exif_bytes(w, h), **extra)


@pytest.mark.parametrize(("fmt", "suffix"), [("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp")])
def test_icc_and_exif_are_kept_and_strip_metadata_drops_them(tmp_path: Path, fmt: str, suffix: str) -> None:
    src = tmp_path / f"cam{suffix}"
    save_with_metadata(src, photo("coffee", (40, 24)), fmt)
    result = run(str(src))
    assert result.exit_code == 0, result.output
    kept = tmp_path / f"cam_x2{suffix}"
    with Image.open(kept) as img:
        assert img.format == fmt and img.size == (80, 48)
        assert img.info.get("icc_profile") == ICC
        exif = img.getexif()
    assert (exif[TAG.Make], exif[TAG.Model], exif[TAG.DateTime]) == ("TestCam", "Model 7", "2024:05:06 07:08:09")
    assert float(exif[TAG.XResolution]) == 300.0
    sub = exif.get_ifd(IFD.Exif)
    assert (sub[TAG.ExifImageWidth], sub[TAG.ExifImageHeight]) == (80, 48)
    assert sub[TAG.DateTimeOriginal] == "2024:05:06 07:08:09"
    assert exif.get_ifd(IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"
    assert exif.get_ifd(IFD.IFD1) == {}  # no stale thumbnail

    result = run(str(src), "--strip-metadata", "-o", str(tmp_path / "bare"))
    assert result.exit_code == 0, result.output
    bare = tmp_path / "bare" / f"cam_x2{suffix}"
    with Image.open(bare) as img:
        assert "icc_profile" not in img.info and not img.getexif()
    # the metadata is added to the encoder's output: the pixels are the same with or without it
    assert np.array_equal(read_rgb(kept), read_rgb(bare))


def test_large_icc_profile_is_split_over_jpeg_segments(tmp_path: Path) -> None:
    big = ICC + bytes(range(256)) * 400  # 102 KB: two APP2 segments
    src = tmp_path / "wide.jpg"
    save_with_metadata(src, photo("coffee", (40, 24)), "JPEG", icc=big)
    result = run(str(src))
    assert result.exit_code == 0, result.output
    data = (tmp_path / "wide_x2.jpg").read_bytes()
    assert data.count(b"ICC_PROFILE\x00") == 2
    with Image.open(tmp_path / "wide_x2.jpg") as img:
        assert img.info["icc_profile"] == big


def test_16bit_png_stays_16bit_with_its_profile(tmp_path: Path) -> None:
    grey = (np.linspace(0, 65535, 24 * 32).reshape(24, 32)).astype(np.uint16)
    src = tmp_path / "deep.png"
    Image.fromarray(grey).save(src, "PNG", icc_profile=ICC)
    result = run(str(src))
    assert result.exit_code == 0, result.output
    out = cv2.imread(str(tmp_path / "deep_x2.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (48, 64) and out.max() > 60000
    with Image.open(tmp_path / "deep_x2.png") as img:
        assert img.info["icc_profile"] == ICC


def tiff_int16(path: Path, arr: np.ndarray) -> None:
    """A one-strip, little-endian, signed 16-bit grey TIFF (SampleFormat 2), written by hand."""
    h, w = arr.shape
    pixels = arr.astype("<i2").tobytes()
    tags = [(256, w), (257, h), (258, 16), (259, 1), (262, 1), (273, 0), (277, 1), (278, h), (279, len(pixels))]
    tags.append((339, 2))
    data_at = 8 + 2 + 12 * len(tags) + 4
    ifd = struct.pack("<H", len(tags))
    for tag, value in tags:
        value = data_at if tag == 273 else value
        long = tag in (273, 279)
        ifd += struct.pack("<HHII", tag, 4, 1, value) if long else struct.pack("<HHIHH", tag, 3, 1, value, 0)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00" * 4 + pixels)


def fits_uint16(path: Path, grey: np.ndarray) -> None:
    """A 16-bit grey FITS image (rows stored bottom-up), written by hand: Pillow reads but cannot write it."""
    h, w = grey.shape
    cards = ["SIMPLE  =                    T", "BITPIX  =                   16", "NAXIS   =                    2"]
    cards += [f"NAXIS1  = {w:20d}", f"NAXIS2  = {h:20d}", "END"]
    header = "".join(c.ljust(80) for c in cards).ljust(2880).encode()
    data = grey[::-1].astype(">u2").tobytes()
    path.write_bytes(header + data + b"\x00" * (-len(data) % 2880))


def pillow_file(path: Path, rgb: np.ndarray, fmt: str, mode: str = "RGB") -> None:
    Image.fromarray(rgb).convert(mode).save(path, fmt)


def test_formats_only_pillow_reads_are_upscaled_from_a_folder(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    rgb = photo("astronaut", (32, 24))
    rgba = np.dstack([rgb, np.tile(np.linspace(0, 255, 32, dtype=np.uint8), (24, 1))])
    for name, fmt, mode in [
        ("a.tga", "TGA", "RGB"),
        ("b.ico", "ICO", "RGB"),
        ("c.pcx", "PCX", "RGB"),
        ("d.sgi", "SGI", "RGB"),
        ("e.qoi", "QOI", "RGB"),
        ("f.dds", "DDS", "RGB"),
        ("g.blp", "BLP", "P"),
        ("h.xbm", "XBM", "1"),
        ("i.gif", "GIF", "P"),
    ]:
        pillow_file(d / name, rgb, fmt, mode)
    Image.fromarray(rgba).save(d / "alpha.tga", "TGA")
    signed = (np.arange(24 * 32).reshape(24, 32) - 400).astype(np.int16)
    tiff_int16(d / "signed.tif", signed)
    grey16 = (np.arange(24 * 32).reshape(24, 32) * 80).astype(np.uint16)
    fits_uint16(d / "deep16.fits", grey16)

    result = run(str(d), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "12 upscaled, 0 skipped, 0 failed" in result.output
    said = ".blp, .dds, .fits, .ico, .pcx, .qoi, .sgi, .tga, .xbm inputs are written as PNG"
    assert result.output.count(said) == 1  # once for the whole run
    out = tmp_path / "out"
    for src in sorted(d.glob("[a-g].*")):
        with Image.open(src) as img:
            w, h = img.size  # ICO keeps the aspect ratio inside a square icon
        out_img = read_rgb(out / f"{src.stem}_x2.png")
        assert out_img.shape == (2 * h, 2 * w, 3), src.name
        assert abs(out_img.mean() - rgb.mean()) < 12, src.name
    assert read_rgb(out / "h_x2.png").ndim == 2  # 1-bit stays grey
    assert read_rgb(out / "i_x2.gif").shape[:2] == (48, 64)
    alpha = read_rgb(out / "alpha_x2.png")
    assert alpha.shape == (48, 64, 4) and alpha[..., 3].min() < 20 and alpha[..., 3].max() > 235
    # signed 16-bit: shifted so -32768 maps to 0 (documented), kept 16-bit, written as TIFF again
    s = cv2.imread(str(out / "signed_x2.tif"), cv2.IMREAD_UNCHANGED)
    assert s.dtype == np.uint16 and s.shape == (48, 64)
    assert abs(float(s.mean()) - (signed.mean() + 32768)) < 8
    deep = cv2.imread(str(out / "deep16_x2.png"), cv2.IMREAD_UNCHANGED)
    assert deep.dtype == np.uint16 and deep.shape == (48, 64) and deep.max() > 255 * 80
    assert deep[0, 0] < 1000 < deep[-1, -1]  # rows the right way up


@pytest.mark.parametrize(("content", "expected"), [("JPEG", "shot_x2.jpg"), ("TGA", "shot_x2.png")])
def test_file_without_extension_is_read_by_content(tmp_path: Path, content: str, expected: str) -> None:
    src = tmp_path / "shot"
    pillow_file(src, photo("coffee", (32, 24)), content)
    result = run(str(src))
    assert result.exit_code == 0, result.output
    assert read_rgb(tmp_path / expected).shape == (48, 64, 3)


FRAME_COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
DURATIONS = [100, 200, 300]


def animation(path: Path, fmt: str, size: tuple[int, int] = (24, 16)) -> None:
    base = photo("astronaut", size)
    frames = []
    for colour in FRAME_COLOURS:
        f = base.copy()
        f[:8, :8] = colour
        frames.append(Image.fromarray(f))
    extra = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(path, fmt, save_all=True, append_images=frames[1:], duration=DURATIONS, loop=2, **extra)


def frames_of(path: Path) -> tuple[list[np.ndarray], list[int], int | None]:
    with Image.open(path) as img:
        frames, durations = [], []
        for i in range(img.n_frames):
            img.seek(i)
            frames.append(np.asarray(img.convert("RGB")))
            durations.append(img.info["duration"])
        return frames, durations, img.info.get("loop")


@pytest.mark.parametrize(("fmt", "suffix"), [("GIF", ".gif"), ("PNG", ".apng"), ("PNG", ".png"), ("WEBP", ".webp")])
def test_animation_keeps_every_frame_its_durations_and_loop(tmp_path: Path, fmt: str, suffix: str) -> None:
    d = tmp_path / "anim"
    d.mkdir()
    animation(d / f"clip{suffix}", fmt)
    result = run(str(d))  # a folder run picks animations up
    assert result.exit_code == 0, result.output
    frames, durations, loop = frames_of(d / f"clip_x2{suffix}")
    assert len(frames) == 3 and durations == DURATIONS and loop == 2
    for frame, colour in zip(frames, FRAME_COLOURS, strict=True):
        assert frame.shape == (32, 48, 3)
        assert np.abs(frame[4:12, 4:12].mean((0, 1)) - colour).max() < 30


def test_animation_into_a_one_frame_format_is_an_error(tmp_path: Path) -> None:
    animation(tmp_path / "clip.gif", "GIF")
    result = run(str(tmp_path / "clip.gif"), "--format", "jpg")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert lines == [
        f"Error: {tmp_path / 'clip.gif'}: an animation of 3 frames cannot be written as .jpg; write .png, .gif or .webp"
    ]
    assert "Traceback" not in result.output and not (tmp_path / "clip_x2.jpg").exists()


def test_animation_through_a_pipe_keeps_every_frame(tmp_path: Path) -> None:
    animation(tmp_path / "clip.gif", "GIF")
    result = CliRunner().invoke(
        main, ["images", "-", "-m", "bicubic", "-s", "2", "-q"], input=(tmp_path / "clip.gif").read_bytes()
    )
    assert result.exit_code == 0, result.output
    (tmp_path / "out").write_bytes(result.stdout_bytes)
    frames, durations, loop = frames_of(tmp_path / "out")
    assert [f.shape for f in frames] == [(32, 48, 3)] * 3 and durations == DURATIONS and loop == 2
