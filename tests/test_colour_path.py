"""What the model actually receives from a video, against the textbook YCbCr equations (ITU-R BT.601 and
BT.709, limited and full range, 8 and 10 bits), and a round trip through a non-linear stand-in model.

A linear model (bicubic) cannot tell a wrong matrix or range: the error made on the way in is undone on
the way out. A gamma curve does not commute with the conversion, so these tests can."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.media import make_video, yuv_planes
from upscale.engine import EngineOptions, Upscaler
from upscale.io.streaming import VideoOptions, upscale_video
from upscale.io.video import EncodeSettings
from upscale.models import LoadedModel, ModelSpec

KR_KB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}
"""Luma weights of red and blue (ITU-R BT.601-7 and BT.709-6); green's is what is left."""
AV_MATRIX = {"bt601": 6, "bt709": 1}
COLOURS = [(220, 30, 40), (30, 200, 60), (40, 60, 210), (128, 128, 128), (230, 190, 150), (20, 20, 20)]
GAMMA = 0.5

CASES = [
    ("bt601", False, 8),
    ("bt601", True, 8),
    ("bt709", False, 8),
    ("bt709", True, 8),
    ("bt709", False, 10),
    ("bt601", True, 10),
]
IDS = [f"{m}-{'full' if f else 'limited'}-{b}bit" for m, f, b in CASES]


def textbook_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, matrix: str, full: bool, bits: int) -> np.ndarray:
    """R'G'B' in [0, 1] from Y'CbCr code values: limited range puts Y' on 16..235 and Cb/Cr on 16..240
    (times 2^(bits-8)); full range uses every code, chroma centred on 2^(bits-1)."""
    kr, kb = KR_KB[matrix]
    y, cb, cr = (p.astype(np.float64) for p in (y, cb, cr))
    if full:
        top = 2**bits - 1
        luma, pb, pr = y / top, (cb - 2 ** (bits - 1)) / top, (cr - 2 ** (bits - 1)) / top
    else:
        step = 2 ** (bits - 8)
        luma, pb, pr = (y / step - 16) / 219, (cb / step - 128) / 224, (cr / step - 128) / 224
    r = luma + 2 * (1 - kr) * pr
    b = luma + 2 * (1 - kb) * pb
    g = (luma - kr * r - kb * b) / (1 - kr - kb)
    return np.stack([r, g, b], axis=-1)


def textbook_luma(rgb: np.ndarray, matrix: str) -> np.ndarray:
    """Y' in [0, 1] of R'G'B' in [0, 1]."""
    kr, kb = KR_KB[matrix]
    return rgb @ np.array([kr, 1 - kr - kb, kb])


def patches() -> np.ndarray:
    img = np.zeros((64, 96, 3), np.uint8)
    for i, colour in enumerate(COLOURS):
        r, c = divmod(i, 3)
        img[r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32] = colour
    return img


class GammaStandIn(nn.Module):
    """Keeps every input it is given; returns it ×2 (nearest) raised to ``GAMMA``."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []
        self.anchor = nn.Parameter(torch.zeros(()))  # the engine places the model by its parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().float().cpu().clone())
        return F.interpolate(x, scale_factor=2, mode="nearest").clamp(0, 1) ** GAMMA + self.anchor


def _stand_in(colour: str) -> tuple[Upscaler, GammaStandIn]:
    spec = ModelSpec(name=f"gamma-{colour}", build=GammaStandIn, scales=(2,), colour=colour, needs_weights=False)
    net = GammaStandIn()
    return Upscaler(LoadedModel(spec, net, 2, None), EngineOptions(tile=0, device="cpu", precision="fp32")), net


def _video(tmp_path: Path, matrix: str, full: bool, bits: int) -> Path:
    pix_fmt = "yuv444p" if bits == 8 else "yuv444p10le"  # 4:4:4: no chroma resampling to model
    return make_video(
        tmp_path / "in.mkv",
        [patches()] * 2,
        codec="ffv1",
        pix_fmt=pix_fmt,
        audio=None,
        matrix=AV_MATRIX[matrix],
        full_range=full,
    )


def _decoded(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


def _run(tmp_path: Path, src: Path, colour: str, bits: int) -> tuple[GammaStandIn, Path]:
    up, net = _stand_in(colour)
    dst = tmp_path / "out.mkv"
    pix_fmt = "yuv444p" if bits == 8 else "yuv444p10le"
    upscale_video(src, dst, up, VideoOptions(encode=EncodeSettings(codec="ffv1", pix_fmt=pix_fmt)))
    return net, dst


@pytest.mark.parametrize(("matrix", "full", "bits"), CASES, ids=IDS)
def test_rgb_model_receives_textbook_rgb_and_round_trip_keeps_it(
    tmp_path: Path, matrix: str, full: bool, bits: int
) -> None:
    src = _video(tmp_path, matrix, full, bits)
    frames = _decoded(src)
    net, dst = _run(tmp_path, src, "rgb", bits)
    assert len(net.seen) == len(frames)
    for frame, seen in zip(frames, net.seen, strict=True):
        expected = textbook_rgb(*yuv_planes(frame), matrix, full, bits)
        got = seen[0].permute(1, 2, 0).numpy()
        assert np.abs(got - np.clip(expected, 0, 1)).max() * 255 < 1.0
    # Through the stand-in and back: the output decodes (textbook, same matrix and range) to the gamma of
    # the input's colours.
    for frame_in, frame_out in zip(frames, _decoded(dst), strict=True):
        assert (frame_out.colorspace, frame_out.color_range) == (AV_MATRIX[matrix], 2 if full else 1)
        rgb_in = np.clip(textbook_rgb(*yuv_planes(frame_in), matrix, full, bits), 0, 1)
        expected = np.repeat(np.repeat(rgb_in, 2, axis=0), 2, axis=1) ** GAMMA
        got = textbook_rgb(*yuv_planes(frame_out), matrix, full, bits)
        # 8-bit planes and the 8-bit RGB in between each round by half a step; a wrong matrix or range
        # misses by tens of steps.
        assert np.abs(got - expected).max() * 255 < 3.0


@pytest.mark.parametrize(("matrix", "full", "bits"), CASES, ids=IDS)
def test_y_model_receives_textbook_studio_luma(tmp_path: Path, matrix: str, full: bool, bits: int) -> None:
    """Y models get studio-swing Y' in [0, 1] (16/255 black, 235/255 white), whatever the range of the file."""
    src = _video(tmp_path, matrix, full, bits)
    net, dst = _run(tmp_path, src, "y", bits)
    rgb = patches().astype(np.float64) / 255
    expected = (16 + 219 * textbook_luma(rgb, matrix)) / 255
    for seen in net.seen:
        assert np.abs(seen[0, 0].numpy() - expected).max() * 255 < 1.0
    # The stand-in's output Y' (gamma of studio Y') comes back on the file's own scale.
    for frame_out in _decoded(dst):
        y = yuv_planes(frame_out)[0].astype(np.float64)
        studio = np.repeat(np.repeat(expected, 2, axis=0), 2, axis=1) ** GAMMA
        code = (studio * 255 - 16) / 219 * (2**bits - 1) if full else studio * 255 * 2 ** (bits - 8)
        assert np.abs(y - np.clip(code, 0, 2**bits - 1)).max() <= 2 ** (bits - 8) * 1.5
