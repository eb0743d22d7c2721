"""A side-by-side picture of what a model does: the low-resolution input (pixels enlarged), bicubic
interpolation, and the model's output, on a crop of a real photo (scikit-image's ``astronaut``).

    python examples/make_comparison.py docs/comparison.png --model rlfn

The photo is shrunk with MATLAB's bicubic (as in evaluation), so the original is the ground truth and
is shown last. Uses the bundled weights unless ``--weights`` is given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from upscale.engine import EngineOptions, Upscaler
from upscale.eval.metrics import psnr
from upscale.eval.protocol import make_lr
from upscale.io.image import write_image
from upscale.models import load_model
from upscale.resize import imresize_np


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = np.concatenate([np.full((22, img.shape[1], 3), 255, np.uint8), img], axis=0)
    cv2.putText(out, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", type=Path)
    p.add_argument("--model", default="rlfn")
    p.add_argument("--weights", default=None)
    p.add_argument("--crop", default="20,140,160", help="top,left,side of the HR crop (default 20,140,160)")
    args = p.parse_args()
    loaded = load_model(args.model, weights=args.weights)
    s = loaded.scale
    top, left, side = (int(v) for v in args.crop.split(","))
    hr = np.ascontiguousarray(data.astronaut()[top : top + side, left : left + side])
    lr = make_lr(hr, s)
    sr = Upscaler(loaded, EngineOptions(precision="fp32", tile=0)).upscale(lr)
    bicubic = imresize_np(lr, s)
    nearest = cv2.resize(lr, (side, side), interpolation=cv2.INTER_NEAREST)
    y = dict(crop_border=s, y_only=True)
    panels = [
        label(nearest, f"input {lr.shape[1]}x{lr.shape[0]}"),
        label(bicubic, f"bicubic {psnr(bicubic, hr, **y):.2f} dB"),
        label(sr, f"{args.model} x{s} {psnr(sr, hr, **y):.2f} dB"),
        label(hr, "original"),
    ]
    write_row(args.output, panels)


def write_row(path: Path, panels: list[np.ndarray]) -> None:
    """Labelled panels side by side, 4 white pixels apart, written to ``path``."""
    gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
    row = np.concatenate([x for panel in panels for x in (panel, gap)][:-1], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, row)
    print(path)


if __name__ == "__main__":
    main()
