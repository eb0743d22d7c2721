"""``--precision auto``: bf16 only on CPUs with native bf16 kernels and for models declared safe in it;
``upscale eval`` stays fp32; the declaration is backed by the Set5 score of the official RLFN x4."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from upscale import engine, fusion
from upscale.cli import main
from upscale.engine import EngineOptions, Upscaler
from upscale.models import REGISTRY, build_model


@pytest.fixture
def native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the CPU has native bf16 kernels (AVX512-BF16 or AMX)."""
    monkeypatch.setattr(engine, "native_cpu_halves", lambda: frozenset({"bf16"}))


@pytest.fixture
def no_native_halves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "native_cpu_halves", lambda: frozenset())


def dtype_of(model: str, precision: str = "auto") -> torch.dtype:
    spec = REGISTRY.get(model)
    return Upscaler(build_model(spec, spec.default_scale), EngineOptions(device="cpu", precision=precision)).dtype


def test_auto_picks_bf16_for_declared_models_on_native_cpus(native_bf16: None) -> None:
    assert REGISTRY.get("rlfn").auto_bf16
    assert dtype_of("rlfn") == torch.bfloat16
    assert dtype_of("rlfn-s") == torch.bfloat16
    undeclared = [s.name for s in REGISTRY if not s.auto_bf16 and s.needs_weights]
    assert "srcnn" in undeclared
    assert dtype_of("srcnn") == torch.float32
    assert dtype_of("rlfn", "fp32") == torch.float32


def test_auto_stays_fp32_without_native_bf16(no_native_halves: None) -> None:
    assert dtype_of("rlfn") == torch.float32


@pytest.fixture(params=[(True, False), (True, True), (False, False)], ids=["avx512-bf16", "amx-fp16", "avx2"])
def cpu_kernels(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[bool, bool]]:
    """A CPU whose oneDNN reports native bf16 (and fp16) kernels, or none: what ``native_cpu_halves``
    reads, faked, its cached answer cleared before and after."""
    bf16, fp16 = request.param
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: bf16)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_fp16_supported", lambda: fp16)
    engine.native_cpu_halves.cache_clear()
    fusion._native_bf16.cache_clear()
    yield bf16, fp16
    engine.native_cpu_halves.cache_clear()
    fusion._native_bf16.cache_clear()


def test_auto_follows_what_the_cpu_reports(cpu_kernels: tuple[bool, bool]) -> None:
    bf16, fp16 = cpu_kernels
    assert engine.native_cpu_halves() == {name for name, native in (("bf16", bf16), ("fp16", fp16)) if native}
    assert engine.native_bf16(torch.device("cpu")) is bf16
    assert dtype_of("rlfn") == (torch.bfloat16 if bf16 else torch.float32)
    assert dtype_of("srcnn") == torch.float32  # not declared bf16-safe
    assert dtype_of("rlfn", "fp32") == torch.float32


def test_eval_stays_fp32_under_native_bf16(native_bf16: None, tmp_path: Path) -> None:
    """The protocol's numbers come from fp32 unless --precision says otherwise; images follow auto."""
    from safetensors.torch import save_file

    from tests.conftest import photo, write_rgb

    data = tmp_path / "hr"
    data.mkdir()
    write_rgb(data / "a.png", photo("astronaut", (64, 64)))
    weights = tmp_path / "rlfn_s.safetensors"
    save_file(build_model(REGISTRY.get("rlfn-s"), 4).module.state_dict(), weights)
    runner = CliRunner()
    ran = runner.invoke(main, ["eval", "rlfn-s", "--weights", str(weights), "--data", str(data), "-v", "--json"])
    assert ran.exit_code == 0, ran.output
    assert "torch.float32" in ran.stderr and "bfloat16" not in ran.stderr
    ran = runner.invoke(
        main, ["images", str(data / "a.png"), "-o", str(tmp_path / "out"), "--weights", str(weights), "-v"]
    )
    assert ran.exit_code == 0, ran.output
    assert "torch.bfloat16" in ran.stderr


@pytest.mark.parametrize("dataset", ["Set5"])
def test_bf16_scores_as_fp32_for_official_rlfn_x4(shared_data: Path, dataset: str) -> None:
    """The claim behind ``auto_bf16=True``: bf16 moves the official RLFN x4 Set5 PSNR by < 0.02 dB
    (bf16 is emulated, and slow, where the CPU lacks native kernels; the numbers are the same)."""
    weights = shared_data / "official-weights" / "rlfn" / "rlfn_x4.pth"
    scores = {}
    for precision in ("fp32", "bf16"):
        args = ["eval", "rlfn", "--weights", str(weights), "--data", str(shared_data / "bench" / dataset)]
        result = CliRunner().invoke(main, [*args, "--precision", precision, "--json", "-q"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        scores[precision] = json.loads(result.stdout)["datasets"][0]["mean"]["psnr"]
    assert scores["fp32"] == pytest.approx(32.24, abs=0.05)
    assert abs(scores["bf16"] - scores["fp32"]) < 0.02
