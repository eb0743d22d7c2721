"""``upscale interpolate``: blending two real weight files through the CLI, and its refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from upscale.cli import main
from upscale.errors import UpscaleError
from upscale.models import REGISTRY, build_model, load_model
from upscale.models.interpolate import interpolate_weights
from upscale.models.loading import recorded_scale


def _random_sd(model: str, scale: int, seed: int, **hparams: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    sd = build_model(REGISTRY.get(model), scale, **hparams).module.state_dict()
    return {k: v.contiguous() for k, v in sd.items()}


@pytest.fixture(scope="module")
def rlfn_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, dict]:
    """Two RLFN x4 networks with different random weights: A as safetensors, B as a wrapped ``.pth``."""
    d = tmp_path_factory.mktemp("pair")
    sd_a, sd_b = _random_sd("rlfn", 4, seed=1), _random_sd("rlfn", 4, seed=2)
    a, b = d / "a.safetensors", d / "b.pth"
    save_file(sd_a, str(a))
    torch.save({"params_ema": sd_b}, b)  # BasicSR's wrapper: unwrapped by the loader
    return a, b, sd_a, sd_b


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["interpolate", *map(str, args)])


def _one_line_error(result: Result) -> str:
    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: "), result.stderr
    return lines[-1]


@pytest.mark.parametrize("alpha", [0.0, 1.0, 0.5])
def test_alpha_blends_every_tensor(rlfn_pair, tmp_path: Path, alpha: float) -> None:
    a, b, sd_a, sd_b = rlfn_pair
    out = tmp_path / "mix.safetensors"
    result = _run(a, b, "--alpha", alpha, "-o", out)
    assert result.exit_code == 0, result.output
    assert (
        result.stdout.strip() == f"{out}: rlfn x4, {len(sd_a)} tensors = a.safetensors@{1 - alpha:g} + b.pth@{alpha:g}"
    )
    got = load_file(str(out))
    assert got.keys() == sd_a.keys()
    for k, v in got.items():
        if alpha == 0.0:
            assert torch.equal(v, sd_a[k]), k
        elif alpha == 1.0:
            assert torch.equal(v, sd_b[k]), k
        else:
            torch.testing.assert_close(v, (sd_a[k] + sd_b[k]) / 2, rtol=0, atol=1e-7)
    assert [p.name for p in tmp_path.iterdir()] == ["mix.safetensors"]  # no temporary file left


def test_output_loads_and_records_the_blend(rlfn_pair, tmp_path: Path) -> None:
    a, b, sd_a, sd_b = rlfn_pair
    out = tmp_path / "mix.safetensors"
    assert _run(a, b, "--alpha", "0.8", "-o", out).exit_code == 0
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert meta["model"] == "rlfn" and meta["scale"] == "4"
    assert meta["interpolated"] == "a.safetensors@0.2 + b.pth@0.8"
    assert recorded_scale(out) == 4
    loaded = load_model("rlfn", weights=out)
    assert loaded.scale == 4
    x = torch.rand(1, 3, 16, 16) * 255
    with torch.no_grad():
        assert loaded.module(x).shape == (1, 3, 64, 64)
    want = 0.2 * sd_a["conv_1.weight"].double() + 0.8 * sd_b["conv_1.weight"].double()
    torch.testing.assert_close(loaded.module.state_dict()["conv_1.weight"], want.float(), rtol=0, atol=1e-7)


def test_integer_tensors_are_copied_from_a(tmp_path: Path) -> None:
    """SRResNet's BatchNorm counters are not blended."""
    sd_a = _random_sd("srresnet", 4, seed=1, num_blocks=1)
    sd_b = _random_sd("srresnet", 4, seed=2, num_blocks=1)
    counters = [k for k in sd_a if k.endswith("num_batches_tracked")]
    assert counters
    for k in counters:
        sd_a[k], sd_b[k] = torch.tensor(5), torch.tensor(9)
    save_file(sd_a, str(tmp_path / "a.safetensors"))
    save_file(sd_b, str(tmp_path / "b.safetensors"))
    done = interpolate_weights(tmp_path / "a.safetensors", tmp_path / "b.safetensors", 0.5, model="srresnet")
    assert (done.spec.name, done.scale) == ("srresnet", 4)
    assert all(done.tensors[k].item() == 5 and done.tensors[k].dtype == torch.int64 for k in counters)
    for k in ("conv1.weight", "blocks.0.conv1.weight"):
        torch.testing.assert_close(done.tensors[k], (sd_a[k] + sd_b[k]) / 2, rtol=0, atol=1e-7)


def test_different_scales_are_refused(rlfn_pair, tmp_path: Path) -> None:
    a, _, _, _ = rlfn_pair
    x2 = tmp_path / "rlfn_x2.safetensors"
    save_file(_random_sd("rlfn", 2, seed=3), str(x2))
    out = tmp_path / "mix.safetensors"
    line = _one_line_error(_run(a, x2, "--alpha", "0.5", "-o", out))
    assert f"{a} holds 'rlfn' x4, {x2} holds 'rlfn' x2" in line
    assert not out.exists()


def test_different_architectures_are_refused(rlfn_pair, tmp_path: Path) -> None:
    a, _, _, _ = rlfn_pair
    esrgan = tmp_path / "esrgan.pth"
    torch.save(_random_sd("esrgan", 4, seed=4, num_block=1), esrgan)
    out = tmp_path / "mix.safetensors"
    result = _run(a, esrgan, "--alpha", "0.5", "-o", out)
    assert result.exit_code == 1
    assert f"{a} holds 'rlfn' x4, {esrgan} holds 'esrgan' x4" in _one_line_error(result)
    assert not out.exists()


def test_different_shapes_are_refused(rlfn_pair, tmp_path: Path) -> None:
    """Both are RLFN x4, but one is narrower (like the pruned NTIRE file)."""
    a, _, _, _ = rlfn_pair
    narrow = tmp_path / "narrow.safetensors"
    save_file(_random_sd("rlfn", 4, seed=5, channels=46), str(narrow))
    line = _one_line_error(_run(a, narrow, "--alpha", "0.5", "-o", tmp_path / "mix.safetensors"))
    assert "differ in shape" in line and "52x3x3x3 in a.safetensors, 46x3x3x3 in narrow.safetensors" in line


def test_bad_alpha_and_missing_file(rlfn_pair, tmp_path: Path) -> None:
    a, b, _, _ = rlfn_pair
    out = tmp_path / "mix.safetensors"
    result = _run(a, b, "--alpha", "1.5", "-o", out)
    assert result.exit_code == 2 and "--alpha" in _one_line_error(result) and "1.5" in result.stderr
    missing = tmp_path / "missing.pth"
    result = _run(a, missing, "--alpha", "0.5", "-o", out)
    assert result.exit_code == 2 and str(missing) in _one_line_error(result)
    with pytest.raises(UpscaleError, match=r"\[0, 1\]"):
        interpolate_weights(a, b, -0.1)
    assert not out.exists()


def test_unreadable_input_names_the_file(rlfn_pair, tmp_path: Path) -> None:
    a, _, _, _ = rlfn_pair
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    result = _run(a, junk, "--alpha", "0.5", "-o", tmp_path / "mix.safetensors")
    assert result.exit_code == 1 and str(junk) in _one_line_error(result)


def test_existing_output_needs_overwrite_and_inputs_are_never_replaced(rlfn_pair, tmp_path: Path) -> None:
    a, b, sd_a, _ = rlfn_pair
    out = tmp_path / "mix.safetensors"
    out.write_bytes(b"keep me")
    line = _one_line_error(_run(a, b, "--alpha", "0", "-o", out))
    assert "--overwrite" in line and str(out) in line
    assert out.read_bytes() == b"keep me"
    assert _run(a, b, "--alpha", "0", "-o", out, "--overwrite").exit_code == 0
    assert load_file(str(out)).keys() == sd_a.keys()

    before = a.read_bytes()
    result = _run(a, b, "--alpha", "0.5", "-o", a, "--overwrite")
    assert result.exit_code == 1 and "is an input" in _one_line_error(result)
    assert a.read_bytes() == before
    result = _run(a, b, "--alpha", "0.5", "-o", tmp_path / "mix.pth")
    assert result.exit_code == 1 and ".safetensors" in _one_line_error(result)
