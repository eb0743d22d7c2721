"""What a real-world model does on a compressed video frame, beside the model trained on clean downscales.

    python examples/make_real_comparison.py comparison_real.png                   # compact (downloads once)
    python examples/make_real_comparison.py out.png --real rlfn=runs/rlfn_real/final.safetensors

A crop of a real photo (scikit-image's ``chelsea``) is shrunk 4x and encoded as a short H.264 video at
a streaming-like quality (CRF 30, libx264); one decoded frame of it, with its blocking and ringing, is
the input. From left to right: the input (pixels enlarged), bicubic, the bundled ``rlfn`` x4 (trained on
clean bicubic downscales), a model made for real-world inputs (``--real MODEL[=WEIGHTS]``: by default
``compact``, Real-ESRGAN's realesr-general-x4v3), and the original. PSNR against the original is on Y, as
``upscale eval`` scores.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import av
import cv2
import numpy as np
from make_comparison import label, write_row  # beside this script
from skimage import data

from upscale.engine import EngineOptions, Upscaler
from upscale.eval.metrics import psnr
from upscale.models import load_model
from upscale.resize import imresize_np


def compressed_frame(lr: np.ndarray, crf: int) -> np.ndarray:
    """``lr`` as the third frame of a 5-frame H.264 clip (yuv420p, ``crf``), decoded back to RGB."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=24, options={"crf": str(crf), "preset": "medium"})
        stream.width, stream.height, stream.pix_fmt = lr.shape[1], lr.shape[0], "yuv420p"
        for i in range(5):
            shifted = np.roll(lr, i - 2, axis=1)  # a slow pan, so the frame is predicted, not only intra-coded
            out.mux(stream.encode(av.VideoFrame.from_ndarray(shifted, format="rgb24")))
        out.mux(stream.encode())
    buf.seek(0)
    with av.open(buf) as video:
        frames = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
    return frames[2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", type=Path)
    p.add_argument("--crf", type=int, default=30, help="x264 quality of the clip (default 30)")
    p.add_argument("--real", default="compact", help="MODEL or MODEL=WEIGHTS made for real inputs (default compact)")
    args = p.parse_args()
    hr = np.ascontiguousarray(data.chelsea()[40:232, 100:292])  # 192x192
    s = 4
    lr = compressed_frame(cv2.resize(hr, (hr.shape[1] // s, hr.shape[0] // s), interpolation=cv2.INTER_AREA), args.crf)
    y = dict(crop_border=s, y_only=True)
    nearest = cv2.resize(lr, hr.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    panels = [label(nearest, f"input {lr.shape[1]}x{lr.shape[0]}")]
    bicubic = imresize_np(lr, s)
    panels.append(label(bicubic, f"bicubic {psnr(bicubic, hr, **y):.2f} dB"))
    real_model, _, real_weights = args.real.partition("=")
    for name, weights, kind in (("rlfn", None, "clean"), (real_model, real_weights or None, "real")):
        loaded = load_model(name, scale=s, weights=weights)
        sr = Upscaler(loaded, EngineOptions(precision="fp32", tile=0)).upscale(lr)
        panels.append(label(sr, f"{name} ({kind}) {psnr(sr, hr, **y):.2f} dB"))
    panels.append(label(hr, "original"))
    write_row(args.output, panels)


if __name__ == "__main__":
    main()
