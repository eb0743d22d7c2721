"""Training pairs: random crops of high-resolution images and their low-resolution inputs.

LR inputs are made the way ``upscale eval`` makes them (MATLAB bicubic ``imresize``, rounded to 8 bits)
from an HR window with enough context around the crop that the result equals cropping the LR of the
whole image; or read from a paired LR folder; or synthesised by the real-world degradation pipeline.
Batches depend only on ``(seed, iteration)``, so a resumed run draws exactly what an uninterrupted
one would, and ranks of a distributed run take disjoint slices of the same global batch.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..color import rgb_to_ycbcr_torch
from ..errors import BadMediaError, UpscaleError
from ..eval.protocol import find_lr, modcrop, prepare_hr
from ..io.image import IMAGE_SUFFIXES, read_image
from ..resize import imresize

log = logging.getLogger("upscale.train")

Degradation = Literal["bicubic", "real"]
MEMORY_FRACTION = 0.25
"""Decoded images are kept in memory while they take less than this share of the machine's RAM."""


@dataclass
class Batch:
    """One training batch, N×C×h×w float32 in [0, 1] (Y models: C = 1)."""

    lr: torch.Tensor
    """The network's input: the LR image, or for pre-upsampling models its bicubic upsampling."""
    hr: torch.Tensor
    lr_small: torch.Tensor
    """The LR image itself (for losses that compare against it, such as DRN's dual loss)."""

    def pin_memory(self) -> Batch:
        """Page-locked copies, so that a DataLoader with ``pin_memory`` can copy them to the GPU asynchronously."""
        return Batch(self.lr.pin_memory(), self.hr.pin_memory(), self.lr_small.pin_memory())


def crop_side(patch: int, scale: int) -> int:
    """The HR crop side used for ``--patch patch``: rounded down to a multiple of ``scale`` (at least ``scale``)."""
    return max(scale, patch - patch % scale)


def find_images(folders: Sequence[str | Path]) -> list[Path]:
    """Image files under ``folders`` (recursively), sorted; raises when a folder is missing or none is found."""
    found: list[Path] = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise BadMediaError(f"{folder}: not a folder")
        found += sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise BadMediaError(
            f"{', '.join(map(str, folders))}: no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return found


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30


class PatchSampler:
    """Draws aligned (LR, HR) crops from a folder of HR images.

    ``patch`` is the HR crop side (a multiple of ``scale`` is used). Images smaller than a crop are
    skipped with a warning. Decoded images stay in memory while they fit in ``MEMORY_FRACTION`` of
    RAM; beyond that, images are read again for each batch by a thread pool.
    """

    def __init__(
        self,
        folders: Sequence[str | Path],
        *,
        scale: int,
        patch: int,
        colour: Literal["rgb", "y"] = "rgb",
        pre_upsample: bool = False,
        lr_folder: str | Path | None = None,
        degradation: Degradation = "bicubic",
        memory_bytes: int | None = None,
    ) -> None:
        self.scale = scale
        self.patch = crop_side(patch, scale)
        self.colour = colour
        self.pre_upsample = pre_upsample
        self.lr_folder = Path(lr_folder) if lr_folder is not None else None
        if self.lr_folder is not None and not self.lr_folder.is_dir():
            raise BadMediaError(f"{self.lr_folder}: not a folder")
        if degradation not in ("bicubic", "real"):
            raise UpscaleError(f"unknown degradation '{degradation}'; use bicubic or real")
        if degradation == "real" and self.lr_folder is not None:
            raise UpscaleError("--degradation real makes its own LR images; it cannot be used with --lr-data")
        self.degradation = degradation
        budget = int((memory_bytes or _memory_bytes()) * MEMORY_FRACTION)
        self.paths: list[Path] = []
        self._cache: list[tuple[np.ndarray, np.ndarray | None]] = []
        self.in_memory = True
        used = 0
        for path in find_images(folders):
            try:
                pair = self._load(path)
            except UpscaleError as exc:
                log.warning("skipped %s", exc)
                continue
            h, w = pair[0].shape[:2]
            if min(h, w) < self.patch:
                log.warning("skipped %s: %dx%d is smaller than the %d-px training crop", path, w, h, self.patch)
                continue
            self.paths.append(path)
            used += pair[0].nbytes + (pair[1].nbytes if pair[1] is not None else 0)
            if self.in_memory and used > budget:
                log.info("training images exceed %d MB; reading them per batch", budget >> 20)
                self.in_memory = False
                self._cache.clear()
            if self.in_memory:
                self._cache.append(pair)
        if not self.paths:
            raise BadMediaError(
                f"{', '.join(map(str, folders))}: no readable image of at least {self.patch}x{self.patch} px"
            )
        self._pool = None if self.in_memory else ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))

    def __len__(self) -> int:
        return len(self.paths)

    def _load(self, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
        hr = prepare_hr(modcrop(read_image(path), self.scale), "rgb")
        if self.lr_folder is None:
            return hr, None
        lr = prepare_hr(read_image(find_lr(self.lr_folder, path, self.scale)), "rgb")
        if lr.shape[:2] != (hr.shape[0] // self.scale, hr.shape[1] // self.scale):
            raise BadMediaError(f"{path}: its LR image is {lr.shape[1]}x{lr.shape[0]}, not 1/{self.scale} of it")
        return hr, lr

    def _image(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        return self._cache[index] if self.in_memory else self._load(self.paths[index])

    def sample(self, seed: int, iteration: int, batch_size: int, *, rank: int = 0, world: int = 1) -> Batch:
        """The batch of ``iteration``; with ``world`` > 1, this rank's slice of the global batch."""
        rng = np.random.default_rng([seed, iteration])
        draws = [
            (int(rng.integers(len(self))), rng.random(2), int(rng.integers(8)), int(rng.integers(1 << 31)))
            for _ in range(batch_size)
        ]
        mine = draws[rank::world]
        images = [self._image(i) for i, *_ in mine] if self._pool is None else None
        if images is None:
            images = list(self._pool.map(self._image, [i for i, *_ in mine]))
        hrs, lrs = [], []
        for (hr_img, lr_img), (_, pos, _, _) in zip(images, mine, strict=True):
            hr, lr = self._crop(hr_img, lr_img, pos)
            hrs.append(hr)
            lrs.append(lr)
        hr = torch.stack(hrs)
        if self.degradation == "real":
            from .degradations import degrade

            lr = torch.cat(
                [degrade(h[None], self.scale, np.random.default_rng(d[3])) for h, d in zip(hr, mine, strict=True)]
            )
        else:
            lr = torch.stack(lrs)
        hr, lr = _augment(hr, lr, [d[2] for d in mine])
        if self.colour == "y":
            hr, lr = _luma(hr), _luma(lr)
        net_in = imresize(lr, scale=self.scale).clamp_(0, 1) if self.pre_upsample else lr
        return Batch(net_in.contiguous(), hr.contiguous(), lr.contiguous())

    def _crop(self, hr: np.ndarray, lr: np.ndarray | None, pos: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        s, p = self.scale, self.patch
        lh, lw = hr.shape[0] // s, hr.shape[1] // s
        lp = p // s
        y0, x0 = int(pos[0] * (lh - lp + 1)), int(pos[1] * (lw - lp + 1))
        hr_patch = _to_tensor(hr[y0 * s : (y0 + lp) * s, x0 * s : (x0 + lp) * s])
        if lr is not None:
            return hr_patch, _to_tensor(lr[y0 : y0 + lp, x0 : x0 + lp])
        if self.degradation == "real":
            return hr_patch, hr_patch  # the LR is made from the batch afterwards
        # MATLAB bicubic of a window with 3 LR pixels of context (the kernel reaches 2), then the centre.
        c = 3
        wy0, wx0 = max(0, y0 - c), max(0, x0 - c)
        wy1, wx1 = min(lh, y0 + lp + c), min(lw, x0 + lp + c)
        window = _to_tensor(hr[wy0 * s : wy1 * s, wx0 * s : wx1 * s]).double()
        small = imresize(window, size=(wy1 - wy0, wx1 - wx0), scale=1.0 / s)
        small = small.mul(255).round().clamp(0, 255).div(255).float()
        return hr_patch, small[:, y0 - wy0 : y0 - wy0 + lp, x0 - wx0 : x0 - wx0 + lp]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_pool": None}  # a thread pool does not travel to worker processes

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if not self.in_memory:
            self._pool = ThreadPoolExecutor(max_workers=2)


class _Iterations(torch.utils.data.Dataset):
    """Item ``i`` is the batch of iteration ``i``: the same whichever process draws it."""

    def __init__(self, sampler: PatchSampler, seed: int, batch_size: int, rank: int, world: int) -> None:
        self.sampler, self.seed, self.batch_size, self.rank, self.world = sampler, seed, batch_size, rank, world

    def __getitem__(self, iteration: int) -> Batch:
        return self.sampler.sample(self.seed, iteration, self.batch_size, rank=self.rank, world=self.world)


def _quiet_worker(_: int) -> None:
    """Ctrl-C is the trainer's to handle (it saves a checkpoint); a worker killed by it would abort the run."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import cv2

    cv2.setNumThreads(1)


def batches(
    sampler: PatchSampler,
    seed: int,
    iterations: range,
    batch_size: int,
    *,
    rank: int = 0,
    world: int = 1,
    workers: int = 0,
    pin_memory: bool = False,
) -> Iterator[Batch]:
    """The batches of ``iterations`` in order, drawn ahead by ``workers`` processes (0: drawn here, when asked).

    Batches depend only on ``(seed, iteration)``, so the workers change the speed, never the result.
    """
    if workers == 0:
        for it in iterations:
            yield sampler.sample(seed, it, batch_size, rank=rank, world=world)
        return
    loader = torch.utils.data.DataLoader(
        _Iterations(sampler, seed, batch_size, rank, world),
        batch_size=None,
        sampler=iterations,
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=4,
        worker_init_fn=_quiet_worker,
        # Fresh processes: a fork would inherit OpenCV's and OpenMP's thread pools mid-use and can hang in them.
        multiprocessing_context="forkserver",
    )
    yield from loader


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 -> 3×H×W float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255)


def _augment(hr: torch.Tensor, lr: torch.Tensor, codes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: horizontal flip (bit 0), vertical flip (bit 1), transpose (bit 2): the eight flips and
    90° rotations of a square crop."""
    hs, ls = [], []
    for h, lo, code in zip(hr, lr, codes, strict=True):
        if code & 1:
            h, lo = h.flip(-1), lo.flip(-1)
        if code & 2:
            h, lo = h.flip(-2), lo.flip(-2)
        if code & 4:
            h, lo = h.transpose(-1, -2), lo.transpose(-1, -2)
        hs.append(h)
        ls.append(lo)
    return torch.stack(hs), torch.stack(ls)


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB -> N×1×H×W BT.601 Y (MATLAB ``rgb2ycbcr``), as the engine feeds Y models."""
    return rgb_to_ycbcr_torch(rgb)[:, :1]
