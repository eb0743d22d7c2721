"""PSNR/SSIM against hand-computed values, an independent SSIM implementation and known properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import photo
from upscale.eval.metrics import gaussian_window, psnr, ssim, to_y

C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2


def test_identical_images_give_infinite_psnr_and_unit_ssim() -> None:
    img = photo("astronaut", (48, 40))
    assert psnr(img, img) == math.inf
    assert psnr(img, img, crop_border=4, y_only=True) == math.inf
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert ssim(img, img, crop_border=4, y_only=True) == pytest.approx(1.0, abs=1e-12)


def test_psnr_of_a_constant_offset() -> None:
    a = np.full((8, 8), 100, np.uint8)
    b = a + np.uint8(5)
    # MSE = 25, so PSNR = 20·log10(255 / 5) = 34.1514 dB.
    assert psnr(a, b) == pytest.approx(34.15140352195873, abs=1e-10)
    assert psnr(b, a) == psnr(a, b)


def test_psnr_hand_computed_small_case() -> None:
    a = np.array([[0, 10], [20, 30]], np.uint8)
    b = np.array([[1, 10], [18, 33]], np.uint8)
    mse = (1 + 0 + 4 + 9) / 4  # 3.5
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-12)


def test_crop_border_ignores_edge_differences() -> None:
    a = photo("coffee", (40, 32))
    b = a.copy()
    b[:3] = 0
    b[:, -3:] = 255
    assert psnr(a, b) < 30
    assert psnr(a, b, crop_border=3) == math.inf
    assert ssim(a, b, crop_border=3) == pytest.approx(1.0, abs=1e-12)


def test_y_only_uses_bt601_studio_luma() -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    a[...] = (200, 100, 50)
    b = np.zeros_like(a)
    b[...] = (190, 110, 40)
    ya = 16 + (65.481 * 200 + 128.553 * 100 + 24.966 * 50) / 255
    yb = 16 + (65.481 * 190 + 128.553 * 110 + 24.966 * 40) / 255
    assert to_y(a)[0, 0] == pytest.approx(ya, abs=1e-9)
    assert psnr(a, b, y_only=True) == pytest.approx(20 * math.log10(255 / abs(ya - yb)), abs=1e-9)
    # Rounded Y (MATLAB on uint8) is integral.
    assert to_y(a, rounded=True)[0, 0] == round(ya)


def test_y_of_grey_input_is_the_grey_value() -> None:
    g = photo("camera", (24, 24))[..., 0]
    assert np.array_equal(to_y(g), g.astype(np.float64))
    assert np.array_equal(to_y(g[..., None]), g.astype(np.float64))


def test_ssim_of_constant_images_has_a_closed_form() -> None:
    # No variance: SSIM = (2·mx·my + C1) / (mx² + my² + C1), the same at every window position.
    a = np.full((16, 16), 120.0)
    b = np.full((16, 16), 90.0)
    expected = (2 * 120 * 90 + C1) / (120**2 + 90**2 + C1)
    assert ssim(a, b) == pytest.approx(expected, abs=1e-12)


def test_ssim_single_window_hand_computed() -> None:
    # An 11x11 image has exactly one valid window: the Gaussian-weighted statistics of the whole image.
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (11, 11)).astype(np.float64)
    y = np.clip(x + rng.normal(0, 12, x.shape), 0, 255)
    ax = np.arange(11) - 5.0
    w = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * 1.5**2))
    w /= w.sum()  # fspecial('gaussian', 11, 1.5)
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy = (w * x * x).sum() - mx**2, (w * y * y).sum() - my**2
    cxy = (w * x * y).sum() - mx * my
    expected = (2 * mx * my + C1) * (2 * cxy + C2) / ((mx**2 + my**2 + C1) * (vx + vy + C2))
    assert ssim(x, y) == pytest.approx(expected, abs=1e-12)


def test_ssim_matches_scikit_image_gaussian_ssim() -> None:
    """scikit-image with Wang et al.'s settings filters the same windows, independently implemented."""
    structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity
    a = photo("astronaut", (64, 48))
    b = np.clip(a.astype(np.int16) + np.random.default_rng(0).integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    ya, yb = to_y(a), to_y(b)
    ref = structural_similarity(
        ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, win_size=11
    )
    assert ssim(a, b, y_only=True) == pytest.approx(ref, abs=1e-10)


def test_ssim_per_channel_mean_without_y_only() -> None:
    a = photo("chelsea", (40, 32))
    b = np.ascontiguousarray(a[:, ::-1])
    per_channel = [ssim(a[..., c], b[..., c]) for c in range(3)]
    assert ssim(a, b) == pytest.approx(float(np.mean(per_channel)), abs=1e-12)


def test_ssim_is_symmetric_and_drops_with_noise() -> None:
    a = photo("astronaut", (48, 48))
    rng = np.random.default_rng(0)
    light = np.clip(a + rng.normal(0, 3, a.shape), 0, 255)
    heavy = np.clip(a + rng.normal(0, 30, a.shape), 0, 255)
    assert ssim(a, light) == pytest.approx(ssim(light, a), abs=1e-12)
    assert 1.0 > ssim(a, light) > ssim(a, heavy) > 0.0
    assert psnr(a, light) > psnr(a, heavy)


def test_gaussian_window_is_normalised_and_symmetric() -> None:
    g = gaussian_window()
    assert g.shape == (11,)
    assert g.sum() == pytest.approx(1.0, abs=1e-15)
    assert np.allclose(g, g[::-1])
    assert g[5] / g[4] == pytest.approx(math.exp(1 / (2 * 1.5**2)))


def test_bad_inputs_raise() -> None:
    a = np.zeros((20, 20), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        psnr(a, np.zeros((20, 21), np.uint8))
    with pytest.raises(ValueError, match="11x11"):
        ssim(np.zeros((10, 30)), np.zeros((10, 30)))
    with pytest.raises(ValueError, match="nothing left"):
        psnr(a, a, crop_border=10)
