"""What a bare model name runs with: its bundled weights, else its official checkpoint.

The rule, per model and scale:

1. a bundled file (``weights/manifest.json``) at that scale; with no scale asked, the best-scoring
   bundled file (x4 first), as :func:`~upscale.models.bundled.find_bundled` picks it;
2. else the official checkpoint of the catalogue (:data:`upscale.hub.CATALOGUE`) for that model and
   scale, the first listed; with no scale asked, the one at the model's default scale, else x4, else
   the first listed at any scale. It is downloaded into the cache on first use;
3. else nothing: the model needs ``--weights``.

Bundled wins because this project measured it (its Set5/Set14 scores are in the manifest) and it needs
no network, with two exceptions. Models that prefer the authors' release (``ModelSpec.prefer_official``:
SRCNN, DRN) run their official checkpoint unless the run is offline and has not cached it; a download of
it that fails (no network, a bad checksum) then falls back on the bundled file with a warning. And an
official checkpoint already in the cache whose Set5 score (``Checkpoint.set5_psnr``) is above the
bundled file's runs in its place: the better file wins once it is at hand, and the bundled file stays
the default of offline and uncached runs. ``--weights`` overrides all of these.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .. import hub
from ..errors import WeightsError
from .bundled import BundledWeights, find_bundled
from .registry import ModelSpec

__all__ = ["WeightsChoice", "default_weights"]

log = logging.getLogger("upscale.models")


@dataclass(frozen=True)
class WeightsChoice:
    """The weights a bare model name means at one scale."""

    source: Literal["bundled", "official"]
    """``bundled``: a file shipped in ``weights/``; ``official``: a catalogue checkpoint, fetched into the cache."""

    name: str
    """``rlfn.x4`` for a bundled file, the catalogue name (``esrgan-official``) for an official one."""

    model: str
    scale: int

    bundled: BundledWeights | None = None
    """The manifest entry and its path, for ``source="bundled"``."""

    checkpoint: hub.Checkpoint | None = None
    """The catalogue entry, for ``source="official"``."""

    fallback: BundledWeights | None = None
    """For an official choice that won over a bundled file: that file, which a failed download falls back on."""

    why: str = ""
    """Why this file and not another, for the announcement line (``above the bundled rlfn.x4's 31.36``)."""

    @property
    def set5_psnr(self) -> float | None:
        """The manifest's Set5 PSNR in dB of a bundled file; None for an official one or where none is recorded."""
        if self.bundled is None or self.bundled.set5_psnr <= 0:
            return None
        return self.bundled.set5_psnr

    @property
    def cached(self) -> bool:
        """Whether the file is at hand: always for a bundled one, once downloaded for an official one."""
        return self.checkpoint is None or hub.cached_path(self.checkpoint) is not None

    @property
    def label(self) -> str:
        """``rlfn.x4 (bundled, Set5 31.02 dB)``, ``esrgan-official (cache)`` or ``esrgan-official (download)``."""
        why = f"; {self.why}" if self.why else ""
        if self.source == "bundled":
            psnr = self.set5_psnr
            return f"{self.name} (bundled" + (f", Set5 {psnr:.2f} dB" if psnr is not None else "") + f"{why})"
        return f"{self.name} ({'cache' if self.cached else 'download'}{why})"

    def fetch(self, *, offline: bool | None = None) -> Path:
        """The weights file: the bundled path, or the cached checkpoint, downloaded unless ``offline``
        (None: ``UPSCALE_OFFLINE`` decides)."""
        if self.bundled is not None:
            return self.bundled.path
        assert self.checkpoint is not None
        try:
            return hub.resolve(self.checkpoint.name, catalogue=(self.checkpoint,), offline=offline)
        except WeightsError as exc:
            if self.fallback is None:
                raise
            psnr = f", Set5 {self.fallback.set5_psnr:.2f} dB" if self.fallback.set5_psnr > 0 else ""
            log.warning("%s; using the bundled %s instead (bundled%s)", exc, self.fallback.name, psnr)
            return self.fallback.path


def default_weights(
    spec: ModelSpec,
    scale: int | None,
    *,
    catalogue: Sequence[hub.Checkpoint] | None = None,
    offline: bool | None = None,
) -> WeightsChoice | None:
    """What ``-m spec.name`` (with ``--scale scale``, or none) runs with and no ``--weights``: see the module.

    None for a parameter-free model, and for one with neither bundled nor official weights at ``scale``.
    ``catalogue`` defaults to :data:`upscale.hub.CATALOGUE`; ``offline`` None leaves it to
    ``UPSCALE_OFFLINE``. The network is never read, the cache only to see whether a file is there.
    """
    if not spec.needs_weights:
        return None
    catalogue = hub.CATALOGUE if catalogue is None else catalogue
    best = find_bundled(spec.name, scale)
    official = _official(spec, scale, catalogue)
    if best is not None and not (official is not None and _prefers(spec, official, offline)):
        better = _scoring_above(best, catalogue)
        if better and hub.cached_path(better[0]) is not None:
            top = better[0]
            why = f"Set5 {top.set5_psnr:.2f} dB, above the bundled {best.name}'s {best.set5_psnr:.2f}"
            return WeightsChoice("official", top.name, top.model, top.scale, checkpoint=top, fallback=best, why=why)
        why = f"'upscale weights download {better[0].name}' gets Set5 {better[0].set5_psnr:.2f} dB" if better else ""
        return WeightsChoice("bundled", best.name, best.model, best.scale, bundled=best, why=why)
    if official is None:
        return None
    fallback = best if best is not None and best.scale == official.scale else None
    return WeightsChoice(
        "official", official.name, official.model, official.scale, checkpoint=official, fallback=fallback
    )


def _scoring_above(bundled: BundledWeights, catalogue: Sequence[hub.Checkpoint]) -> list[hub.Checkpoint]:
    """Official checkpoints of the bundled file's model and scale whose Set5 score is above its score,
    cached ones first, then the best scoring."""
    above = [
        e
        for e in catalogue
        if e.kind == "sr"
        and e.model == bundled.model
        and e.scale == bundled.scale
        and e.set5_psnr is not None
        and e.set5_psnr > bundled.set5_psnr > 0
    ]
    return sorted(above, key=lambda e: (hub.cached_path(e) is None, -(e.set5_psnr or 0.0)))


def _prefers(spec: ModelSpec, official: hub.Checkpoint, offline: bool | None) -> bool:
    """Whether the official file wins over a bundled one: for models that prefer it, unless offline
    without it in the cache."""
    if not spec.prefer_official:
        return False
    offline = hub.offline_from_env() if offline is None else offline
    return not offline or hub.cached_path(official) is not None


def _official(spec: ModelSpec, scale: int | None, catalogue: Sequence[hub.Checkpoint]) -> hub.Checkpoint | None:
    entries = [e for e in catalogue if e.kind == "sr" and e.model == spec.name and (scale is None or e.scale == scale)]
    if not entries:
        return None
    if scale is None:
        preferred = [e for s in (spec.default_scale, 4) for e in entries if e.scale == s]
        entries = preferred or entries
    return entries[0]
