"""Training pairs: the LR crops equal crops of the eval protocol's LR image, paired folders, Y pairs, order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import photo, read_rgb, write_rgb
from upscale.color import rgb_to_y
from upscale.eval.protocol import make_lr, modcrop
from upscale.resize import imresize
from upscale.train.data import PatchSampler


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "hr"
    d.mkdir()
    write_rgb(d / "astronaut.png", photo("astronaut", (101, 90)))  # not a multiple of the scale
    return d


def _find(patch: np.ndarray, image: np.ndarray) -> bool:
    """Whether ``patch`` (h×w×c) occurs in ``image`` under one of the eight flips/rotations."""
    h = patch.shape[0]
    for k in range(4):
        for cand in (np.rot90(patch, k), np.rot90(patch, k)[:, ::-1]):
            for y in range(image.shape[0] - h + 1):
                for x in range(image.shape[1] - h + 1):
                    if np.array_equal(image[y : y + h, x : x + h], cand):
                        return True
    return False


def test_bicubic_lr_crops_equal_crops_of_the_whole_images_lr(folder: Path) -> None:
    s = 4
    sampler = PatchSampler([folder], scale=s, patch=32)
    hr_img = modcrop(read_rgb(folder / "astronaut.png"), s)
    lr_img = make_lr(hr_img, s)
    batch = sampler.sample(seed=3, iteration=0, batch_size=4)
    assert batch.lr.shape == (4, 3, 8, 8) and batch.hr.shape == (4, 3, 32, 32)
    for lr, hr in zip(batch.lr, batch.hr, strict=True):
        lr_u8 = np.round(lr.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        hr_u8 = np.round(hr.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        assert _find(lr_u8, lr_img) and _find(hr_u8, hr_img)


def test_paired_lr_folder_is_used_as_given(folder: Path, tmp_path: Path) -> None:
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    given = np.random.default_rng(0).integers(0, 256, (22, 25, 3), dtype=np.uint8)  # 1/4 of 90x101 modcropped
    write_rgb(lr_dir / "astronautx4.png", given)
    batch = PatchSampler([folder], scale=4, patch=32, lr_folder=lr_dir).sample(0, 0, 2)
    for lr in batch.lr:
        assert _find(np.round(lr.permute(1, 2, 0).numpy() * 255).astype(np.uint8), given)


def test_y_pairs_for_pre_upsampling_models(folder: Path) -> None:
    batch = PatchSampler([folder], scale=3, patch=33, colour="y", pre_upsample=True).sample(1, 5, 2)
    assert batch.lr.shape == batch.hr.shape == (2, 1, 33, 33)
    assert batch.lr_small.shape == (2, 1, 11, 11)
    torch.testing.assert_close(batch.lr, imresize(batch.lr_small, scale=3).clamp(0, 1))
    rgb = PatchSampler([folder], scale=3, patch=33).sample(1, 5, 2).hr  # the same crops, in RGB
    for y, c in zip(batch.hr, rgb, strict=True):
        np.testing.assert_allclose(y[0].numpy(), rgb_to_y(c.permute(1, 2, 0).numpy()), atol=1e-6)


def test_batches_depend_only_on_seed_and_iteration_and_ranks_split_them(folder: Path) -> None:
    a = PatchSampler([folder], scale=2, patch=16)
    b = PatchSampler([folder], scale=2, patch=16)
    one = a.sample(7, 11, 4)
    assert torch.equal(one.hr, b.sample(7, 11, 4).hr)
    assert not torch.equal(one.hr, a.sample(7, 12, 4).hr)
    halves = [a.sample(7, 11, 4, rank=r, world=2).hr for r in (0, 1)]
    assert torch.equal(torch.cat(halves).sort(dim=0).values, one.hr.sort(dim=0).values)


def test_images_read_per_batch_when_they_do_not_fit_in_memory(folder: Path) -> None:
    lazy = PatchSampler([folder], scale=2, patch=16, memory_bytes=1)
    assert not lazy.in_memory
    eager = PatchSampler([folder], scale=2, patch=16)
    assert torch.equal(lazy.sample(0, 0, 3).lr, eager.sample(0, 0, 3).lr)
    lazy.close()
