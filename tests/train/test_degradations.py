"""Real-ESRGAN degradation: kernels, JPEG round trip, and the contract of ``degrade`` on real photos."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.conftest import photo
from upscale.resize import imresize
from upscale.train.degradations import (
    KERNEL_KINDS,
    RealDegradation,
    blur_kernel,
    degrade,
    jpeg,
    random_kernel,
    sinc_kernel,
)

OFF = RealDegradation(
    blur_prob=0.0,
    blur_prob2=0.0,
    resize_prob=(0.0, 0.0, 1.0),
    resize_prob2=(0.0, 0.0, 1.0),
    resize_modes=("bicubic",),
    noise_prob=0.0,
    noise_prob2=0.0,
    jpeg_prob=0.0,
    jpeg_prob2=0.0,
    final_sinc_prob=0.0,
)


def batch(*names: str, size: int = 64) -> torch.Tensor:
    imgs = [torch.from_numpy(photo(n, (size, size))).permute(2, 0, 1).float() / 255 for n in names]
    return torch.stack(imgs)


@pytest.mark.parametrize("kind", KERNEL_KINDS)
@pytest.mark.parametrize("size", [7, 21])
def test_blur_kernel_sums_to_one_with_requested_size(kind: str, size: int) -> None:
    k = blur_kernel(kind, size, 1.2, 2.5, 0.7, beta=1.5)
    assert k.shape == (size, size) and k.dtype == np.float64
    assert k.sum() == pytest.approx(1.0) and (k >= 0).all()


@pytest.mark.parametrize("kind", ["iso", "generalized_iso", "plateau_iso"])
def test_isotropic_kernels_are_symmetric(kind: str) -> None:
    k = blur_kernel(kind, 11, 2.0, 0.3, 1.0, beta=2.0)  # sigma_y and theta are ignored
    np.testing.assert_allclose(k, k.T, atol=1e-15)
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-15)
    np.testing.assert_allclose(k, np.rot90(k), atol=1e-15)


def test_anisotropic_kernel_is_elongated_along_the_larger_sigma() -> None:
    k = blur_kernel("aniso", 15, 3.0, 0.5, 0.0)
    assert k[7, :].sum() > 3 * k[:, 7].sum()  # wide along x, narrow along y


def test_blur_kernel_rejects_bad_kind_and_even_size() -> None:
    with pytest.raises(ValueError):
        blur_kernel("box", 7, 1.0, 1.0, 0.0)
    with pytest.raises(ValueError):
        blur_kernel("iso", 8, 1.0, 1.0, 0.0)


@pytest.mark.parametrize("cutoff", [math.pi / 5, math.pi / 2, math.pi])
def test_sinc_kernel_sums_to_one_and_rings(cutoff: float) -> None:
    k = sinc_kernel(cutoff, 21)
    assert k.shape == (21, 21) and k.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(k, k.T, atol=1e-15)
    if cutoff < math.pi:
        assert k.min() < 0  # negative lobes are what make the ringing


def test_random_kernel_is_normalised_and_odd() -> None:
    rng = np.random.default_rng(0)
    for second in (False, True):
        for _ in range(20):
            k = random_kernel(rng, RealDegradation(), second)
            assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1 and 7 <= k.shape[0] <= 21
            assert k.sum() == pytest.approx(1.0)


def test_jpeg_quality_bounds_and_strength() -> None:
    img = batch("astronaut")
    with pytest.raises(ValueError):
        jpeg(img, 0)
    with pytest.raises(ValueError):
        jpeg(img, 101)
    hi, lo = jpeg(img, 95), jpeg(img, 30)
    assert hi.shape == img.shape and hi.dtype == img.dtype
    err_hi, err_lo = (hi - img).abs().mean().item(), (lo - img).abs().mean().item()
    assert err_hi < 0.02 and err_lo > 1.5 * err_hi


@pytest.mark.parametrize("scale", [2, 4])
def test_degrade_shape_dtype_range_and_levels(scale: int) -> None:
    hr = batch("astronaut", "coffee")
    lr = degrade(hr, scale, np.random.default_rng(1))
    assert lr.shape == (2, 3, 64 // scale, 64 // scale) and lr.dtype == torch.float32
    assert lr.min() >= 0 and lr.max() <= 1
    torch.testing.assert_close(lr * 255, (lr * 255).round(), atol=1e-4, rtol=0)


def test_degrade_is_deterministic_per_seed() -> None:
    hr = batch("astronaut", "chelsea")
    a = degrade(hr, 4, np.random.default_rng(7))
    assert torch.equal(a, degrade(hr, 4, np.random.default_rng(7)))
    assert not torch.equal(a, degrade(hr, 4, np.random.default_rng(8)))


def test_degrade_draws_per_image() -> None:
    hr = batch("astronaut", "astronaut")
    lr = degrade(hr, 2, np.random.default_rng(3))
    assert not torch.equal(lr[0], lr[1])


def test_degrade_differs_from_bicubic() -> None:
    hr = batch("astronaut", "coffee")
    bicubic = imresize(hr, size=(16, 16)).clamp(0, 1)
    lr = degrade(hr, 4, np.random.default_rng(0))
    assert (lr - bicubic).abs().mean() > 0.01


def test_degrade_with_every_step_off_is_bicubic() -> None:
    hr = batch("astronaut", "coffee")
    lr = degrade(hr, 4, np.random.default_rng(0), OFF)
    bicubic = imresize(hr, size=(16, 16)).clamp(0, 1)
    assert (lr - bicubic).abs().max() <= 0.5 / 255 + 1e-6


def test_degrade_rejects_size_not_multiple_of_scale() -> None:
    with pytest.raises(ValueError):
        degrade(torch.zeros(1, 3, 30, 30), 4, np.random.default_rng(0))
