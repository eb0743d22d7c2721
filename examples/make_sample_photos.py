"""Write a folder of real sample photos (scikit-image's data set) to try ``upscale images`` on.

    python examples/make_sample_photos.py photos/

Needs scikit-image (``pip install scikit-image``). Writes PNG and JPEG files, a grey one, and one in a
sub-folder, each shrunk so a CPU upscales the folder in seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from skimage import data

PHOTOS = {
    "astronaut.png": "astronaut",
    "coffee.jpg": "coffee",
    "chelsea.png": "chelsea",
    "camera_grey.png": "camera",
    "more/rocket.jpg": "rocket",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--max-side", type=int, default=160, help="Longest side of each photo in pixels.")
    args = parser.parse_args()
    for name, source in PHOTOS.items():
        img = np.ascontiguousarray(getattr(data, source)())
        k = args.max_side / max(img.shape[:2])
        if k < 1:
            img = cv2.resize(img, (round(img.shape[1] * k), round(img.shape[0] * k)), interpolation=cv2.INTER_AREA)
        if img.ndim == 3:
            img = cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)
        path = args.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), img)
        print(path)


if __name__ == "__main__":
    main()
