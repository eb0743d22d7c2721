"""Weights trained by this project and shipped with it (``weights/``).

``weights/manifest.json`` is the single source: one entry per file with the model, scale, how it was
trained and what it scores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any


def weights_dir() -> Path:
    """The bundled weights: packaged as ``upscale._weights``, or ``weights/`` of a source checkout."""
    packaged = Path(__file__).resolve().parents[1] / "_weights"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "weights"


@dataclass(frozen=True)
class BundledWeights:
    name: str
    """``model.xS`` (``rlfn.x4``)."""
    model: str
    scale: int
    path: Path
    info: dict[str, Any]
    """The manifest entry: training recipe, scores, sha256."""

    @property
    def set5_psnr(self) -> float:
        return float(self.info.get("scores", {}).get("Set5", {}).get("psnr", 0.0))


@lru_cache(maxsize=1)
def bundled_weights() -> tuple[BundledWeights, ...]:
    manifest = weights_dir() / "manifest.json"
    if not manifest.is_file():
        return ()
    entries = json.loads(manifest.read_text()).get("weights", [])
    found = []
    for e in entries:
        path = weights_dir() / e["file"]
        if path.is_file():
            found.append(BundledWeights(f"{e['model']}.x{e['scale']}", e["model"], int(e["scale"]), path, e))
    return tuple(found)


def find_bundled(model: str, scale: int | None) -> BundledWeights | None:
    """Bundled weights for ``model`` at ``scale`` (the best-scoring scale-4 set when ``scale`` is None)."""
    matches = [b for b in bundled_weights() if b.model == model and (scale is None or b.scale == scale)]
    if not matches:
        return None
    return max(matches, key=lambda b: (b.scale == 4, b.set5_psnr))
