"""Shared fixtures: real images from scikit-image, written to real files, and the optional ../shared data."""

from __future__ import annotations

import os
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

SHARED = Path(os.environ.get("UPSCALE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SHARED_DATA = SHARED / "data"


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def photo(name: str = "astronaut", size: tuple[int, int] | None = None) -> np.ndarray:
    """A real RGB uint8 photo shipped with scikit-image, optionally resized to ``size=(w, h)``."""
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = np.ascontiguousarray(img[..., :3])
    if size is not None:
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    return img


# Narrower or shallower networks where the full size would take minutes on two CPU cores; tiling
# depends on the receptive field and global operations, which these keep.
_SMALL = {
    "drcn": {"num_filters": 32},
    "esrgan": {"num_block": 3},
    "drn-s": {"n_blocks": 4},
    "drn-l": {"n_feats": 20, "n_blocks": 4},
}


def small_model(name: str, scale: int | None = None):
    """``name`` with random weights (seeded) at ``scale`` (default: its default), small where it is slow."""
    from upscale.models import REGISTRY, build_model

    spec = REGISTRY.get(name)
    torch.manual_seed(0)
    return build_model(spec, scale or spec.default_scale, **_SMALL.get(name, {}))


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    """Write an RGB (or gray) array with OpenCV, which stores BGR."""
    arr = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR if rgb.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    assert cv2.imwrite(str(path), arr), path
    return path


def read_rgb(path: Path) -> np.ndarray:
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert arr is not None, path
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    return arr


@pytest.fixture
def photos_dir(tmp_path: Path) -> Path:
    """A folder of three small real photos (PNG and JPEG) and a sub-folder with one more."""
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    write_rgb(d / "astronaut.png", photo("astronaut", (64, 64)))
    write_rgb(d / "coffee.jpg", photo("coffee", (72, 48)))
    write_rgb(d / "chelsea.png", photo("chelsea", (60, 40)))
    write_rgb(d / "sub" / "rocket.png", photo("rocket", (48, 40)))
    return d


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the repository; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
