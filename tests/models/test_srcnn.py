"""SRCNN: sizes, the authors' MATLAB weights, the published Set5 numbers and honest tiling margins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from scipy.ndimage import correlate

from tests.conftest import photo, read_rgb
from tests.models.checks import assert_half_close_to_float32, assert_tile_matches_whole
from upscale.color import rgb_to_y
from upscale.errors import WeightsError
from upscale.models import REGISTRY, load_model, read_state_dict
from upscale.models.nets.rlfn import RLFN
from upscale.models.nets.srcnn import SRCNN
from upscale.models.srcnn import SRCNN_SPEC, convert, hparams_from
from upscale.resize import imresize, imresize_np

MAT = "official-weights/srcnn_v1_915/x{}.mat"


def _weights_only(net: torch.nn.Module) -> int:
    return sum(p.numel() for n, p in net.named_parameters() if n.endswith("weight"))


@pytest.mark.parametrize(
    ("kernel_sizes", "total", "weights"),
    [((9, 1, 5), 8_129, 8_032), ((9, 3, 5), 24_513, 24_416), ((9, 5, 5), 57_281, 57_184)],
)
def test_param_counts_match_published(kernel_sizes: tuple[int, int, int], total: int, weights: int) -> None:
    net = SRCNN(kernel_sizes=kernel_sizes)
    assert sum(p.numel() for p in net.parameters()) == total
    assert _weights_only(net) == weights


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_has_the_pre_upsampled_size(tmp_path: Path, scale: int) -> None:
    loaded = load_model("srcnn", scale=scale, weights=_saved(tmp_path, SRCNN()))
    lr = torch.rand(2, 1, 9, 13)
    up = imresize(lr, scale=scale)
    with torch.no_grad():
        out = loaded.module(up)
    assert loaded.scale == scale
    assert out.shape == (2, 1, 9 * scale, 13 * scale)


def _saved(folder: Path, net: torch.nn.Module, name: str = "net.safetensors") -> Path:
    path = folder / name
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def _randomised(net: SRCNN) -> SRCNN:
    """Weights large enough that the output depends visibly on every layer."""
    for conv in (net.conv1, net.conv2, net.conv3):
        torch.nn.init.normal_(conv.weight, std=0.1)
        torch.nn.init.normal_(conv.bias, std=0.1)
    return net.eval()


@pytest.mark.parametrize("kernel_sizes", [(9, 1, 5), (9, 5, 5)])
def test_safetensors_round_trip(tmp_path: Path, kernel_sizes: tuple[int, int, int]) -> None:
    net = _randomised(SRCNN(kernel_sizes=kernel_sizes, n1=16, n2=8))
    loaded = load_model("srcnn", scale=3, weights=_saved(tmp_path, net))
    assert loaded.module.kernel_sizes == kernel_sizes
    x = imresize(torch.from_numpy(rgb_to_y(photo("camera", (20, 16)) / 255.0))[None, None], scale=3).float()
    with torch.no_grad():
        assert torch.equal(loaded.module(x), net(x))


def test_weights_of_another_model_are_named(tmp_path: Path) -> None:
    path = _saved(tmp_path, RLFN(scale=2, channels=8, num_blocks=1))
    with pytest.raises(WeightsError, match=r"weights of 'rlfn', not 'srcnn'"):
        load_model("srcnn", weights=path)


def test_foreign_layout_is_not_claimed_as_srcnn() -> None:
    sd = dict(SRCNN().state_dict())
    sd["conv4.weight"] = torch.zeros(1, 1, 3, 3)
    assert not SRCNN_SPEC.detect(sd)
    assert REGISTRY.identify(SRCNN().state_dict()) is SRCNN_SPEC


# --- the authors' MATLAB release -----------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_mat_file_loads_with_every_key_used(shared_data: Path, scale: int) -> None:
    path = shared_data / MAT.format(scale)
    raw = read_state_dict(path)
    converted = convert(raw)
    assert set(raw) == {f"{kind}_conv{i}" for kind in ("weights", "biases") for i in (1, 2, 3)}
    assert "scale" not in hparams_from(converted)  # a .mat file does not say its scale
    loaded = load_model("srcnn", scale=scale, weights=path)
    assert loaded.scale == scale
    assert loaded.module.kernel_sizes == (9, 1, 5)
    assert set(converted) == set(loaded.module.state_dict())
    assert loaded.num_params == sum(v.numel() for v in raw.values()) == 8_129
    assert all(v.dtype == torch.float32 for v in converted.values())


def _matlab_srcnn(mat: dict[str, np.ndarray], im: np.ndarray) -> np.ndarray:
    """The authors' ``SRCNN.m`` written out literally: column-major kernels, ``imfilter`` correlation
    with replicated borders, layer by layer, in float64."""
    w1, b1 = mat["weights_conv1"], mat["biases_conv1"].ravel()
    w2, b2 = mat["weights_conv2"], mat["biases_conv2"].ravel()
    w3, b3 = mat["weights_conv3"], mat["biases_conv3"].ravel()
    f1, f2, f3 = (round(n**0.5) for n in (w1.shape[0], w2.shape[1], w3.shape[1]))

    def imfilter(x: np.ndarray, w: np.ndarray, f: int) -> np.ndarray:
        return correlate(x, w.reshape(f, f, order="F"), mode="nearest")

    h1 = [np.maximum(imfilter(im, w1[:, i], f1) + b1[i], 0) for i in range(w1.shape[1])]
    h2 = [
        np.maximum(sum(imfilter(h1[j], w2[j, :, i], f2) for j in range(w2.shape[0])) + b2[i], 0)
        for i in range(w2.shape[2])
    ]
    return sum(imfilter(h2[i], w3[i, :], f3) for i in range(w3.shape[0])) + b3[0]


def test_mat_conversion_matches_the_authors_test_code(shared_data: Path) -> None:
    path = shared_data / MAT.format(3)
    mat = {k: v.numpy() for k, v in read_state_dict(path).items()}
    im = imresize(torch.from_numpy(rgb_to_y(photo("astronaut", (14, 12)) / 255.0))[None, None], scale=3)
    expected = _matlab_srcnn(mat, im[0, 0].numpy())
    net = load_model("srcnn", scale=3, weights=path).module.double()
    with torch.no_grad():
        got = net(im)[0, 0].numpy()
    # The released doubles hold single-precision values, so the float32 conversion loses nothing.
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


def _psnr_y(a: np.ndarray, b: np.ndarray, border: int) -> float:
    """PSNR of two Y images in [0, 1], each rounded to 8 bits first, ``border`` pixels shaved."""
    a8, b8 = (np.clip(np.round(x * 255.0), 0, 255)[border:-border, border:-border] for x in (a, b))
    return float(10 * np.log10(255.0**2 / np.mean((a8 - b8) ** 2)))


def _protocol(net: torch.nn.Module, hr_rgb: np.ndarray, scale: int) -> tuple[float, float]:
    """(SRCNN, bicubic) PSNR: mod-crop, MATLAB bicubic LR in RGB, Y of the LR, bicubic up, network."""
    h, w = hr_rgb.shape[:2]
    hr = hr_rgb[: h - h % scale, : w - w % scale]
    lr = imresize_np(hr, 1 / scale)
    y_up = imresize(torch.from_numpy(rgb_to_y(lr / 255.0))[None, None], scale=scale)
    with torch.no_grad():
        y_sr = net(y_up.float()).double()
    y_hr = rgb_to_y(hr / 255.0)
    return _psnr_y(y_sr[0, 0].numpy(), y_hr, scale), _psnr_y(y_up[0, 0].numpy(), y_hr, scale)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_butterfly_beats_bicubic(shared_data: Path, scale: int) -> None:
    net = load_model("srcnn", scale=scale, weights=shared_data / MAT.format(scale)).module
    sr, bicubic = _protocol(net, read_rgb(shared_data / "bench/Set5/butterfly.png"), scale)
    assert sr > bicubic + 2.0, (sr, bicubic)


# ECCV 2014 SRCNN (9-1-5, 91 images), Set5 PSNR on Y with a border of `scale`.
@pytest.mark.parametrize(("scale", "published"), [(2, 36.34), (3, 32.39), (4, 30.09)])
def test_set5_reproduces_the_paper(shared_data: Path, scale: int, published: float) -> None:
    net = load_model("srcnn", scale=scale, weights=shared_data / MAT.format(scale)).module
    scores = [_protocol(net, read_rgb(p), scale)[0] for p in sorted((shared_data / "bench/Set5").glob("*.png"))]
    assert len(scores) == 5
    assert abs(float(np.mean(scores)) - published) < 0.05


# --- tiling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_margin_gives_exact_tiles(scale: int) -> None:
    """A tile cut from the LR image with ``margin_px`` of context, bicubic-upsampled and run on its
    own, gives the same pixels as the whole image (the widest variant, 9-5-5)."""
    net = _randomised(SRCNN(kernel_sizes=(9, 5, 5), n1=16, n2=8)).double()
    m = SRCNN_SPEC.margin_px
    lr = torch.from_numpy(rgb_to_y(photo("coffee", (2 * m + 14, 2 * m + 13)) / 255.0))[None, None]
    box = (m + 4, m + 3, m + 9, m + 9)  # the tile in LR pixels, with context beyond the margin
    assert_tile_matches_whole(net, lr, margin=m, scale=scale, box=box, pre_upsample=True, atol=1e-12)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_half_precision_matches_float32(device: str) -> None:
    """``supports_half``: float16 stays within a small fraction of the float32 output's range."""
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    net = _randomised(SRCNN(kernel_sizes=(9, 5, 5))).to(device)
    x = imresize(torch.from_numpy(rgb_to_y(photo("camera", (24, 20)) / 255.0))[None, None], scale=3).float().to(device)
    assert_half_close_to_float32(net, x)
