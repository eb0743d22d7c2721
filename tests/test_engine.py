"""The engine on its own: tiling, colour handling, layouts, precision and memory fallbacks."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import photo, small_model
from upscale.color import rgb_to_ycbcr, rgb_to_ycbcr_torch, ycbcr_to_rgb, ycbcr_to_rgb_torch
from upscale.engine import EngineOptions, Upscaler
from upscale.errors import UpscaleError
from upscale.models import REGISTRY, LoadedModel, ModelSpec, build_model
from upscale.resize import imresize


def _tiled_vs_untiled(model: LoadedModel, img: np.ndarray, tile: int) -> np.ndarray:
    """In fp32: under ``--precision auto`` a CPU with native bf16 runs RLFN in bf16, whose rounding (a
    step of 2**-9) differs between a tile and the whole frame and would hide what tiling itself does."""
    whole = Upscaler(model, EngineOptions(tile=0, precision="fp32")).upscale(img)
    tiled = Upscaler(model, EngineOptions(tile=tile, batch_size=3, precision="fp32")).upscale(img)
    assert tiled.shape == whole.shape
    return np.abs(tiled.astype(np.float64) - whole)


@pytest.mark.parametrize("name", [s.name for s in REGISTRY if s.exact_tiling])
def test_tiled_equals_untiled_for_exact_models(name: str) -> None:
    model = small_model(name)
    img = photo("astronaut", (88, 72)).astype(np.float32) / 255
    diff = _tiled_vs_untiled(model, img, tile=32)
    assert diff.max() <= 1e-4, f"{name}: max difference {diff.max():.2e}"


@pytest.mark.parametrize("name", [s.name for s in REGISTRY if not s.exact_tiling])
def test_tiling_of_position_dependent_models_stays_within_their_own_shift_variance(name: str) -> None:
    """Models with pooled attention (RLFN's ESA, DRN's channel attention) or a receptive field wider than
    any pad (ESRGAN) cannot give the untiled result exactly. The tiled result must still differ from it
    less than the untiled model differs from itself when the photo moves by one pixel, and by at most
    2/255 anywhere."""
    model = small_model(name)
    img = photo("astronaut", (129, 113)).astype(np.float32) / 255
    diff = _tiled_vs_untiled(model, img[:-1, :-1], tile=32)
    up = Upscaler(model, EngineOptions(tile=0))
    s = model.scale
    a, b = up.upscale(img[:-1, :-1]), up.upscale(img[1:, 1:])
    shift = np.abs(a[s:, s:].astype(np.float64) - b[:-s, :-s])
    assert diff.mean() <= shift.mean() + 1e-6, (diff.mean(), shift.mean())
    assert diff.max() <= 2 / 255, f"{name}: max difference {diff.max() * 255:.2f}/255"


def test_rlfn_official_weights_tile_close_to_untiled(shared_data) -> None:
    from upscale.models import load_model

    model = load_model("rlfn", weights=shared_data / "official-weights/rlfn/rlfn_x2.pth")
    img = photo("astronaut", (161, 161)).astype(np.float32) / 255
    diff = _tiled_vs_untiled(model, img[:-1, :-1], tile=64)
    up = Upscaler(model, EngineOptions(tile=0, precision="fp32"))
    a, b = up.upscale(img[:-1, :-1]), up.upscale(img[1:, 1:])
    shift = np.abs(a[2:, 2:].astype(np.float64) - b[:-2, :-2])
    assert diff.mean() <= shift.mean(), (diff.mean(), shift.mean())
    assert 10 * np.log10(1 / np.mean(diff**2)) > 50  # PSNR of tiled against untiled


def test_ycbcr_round_trip_matches_matlab_constants() -> None:
    rgb = photo("coffee", (40, 30)).astype(np.float64) / 255
    ycc = rgb_to_ycbcr(rgb)
    assert np.abs(ycbcr_to_rgb(ycc) - rgb).max() < 1e-12
    # MATLAB rgb2ycbcr: white -> (235, 128, 128), black -> (16, 128, 128).
    np.testing.assert_allclose(
        rgb_to_ycbcr(np.array([[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]])) * 255,
        [[[235, 128, 128], [16, 128, 128]]],
        atol=1e-9,
    )
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    torch.testing.assert_close(rgb_to_ycbcr_torch(t)[0].permute(1, 2, 0).numpy(), ycc)
    torch.testing.assert_close(ycbcr_to_rgb_torch(rgb_to_ycbcr_torch(t)), t)


@pytest.mark.parametrize("name", ["bicubic", "srcnn"])
@pytest.mark.parametrize("kind", ["rgb8", "rgba8", "gray8", "gray1", "rgb16", "gray16", "float32"])
def test_layouts_and_bit_depths_are_kept(name: str, kind: str) -> None:
    rgb = photo("chelsea", (36, 28))
    gray = rgb[..., 1]
    img = {
        "rgb8": rgb,
        "rgba8": np.dstack([rgb, np.linspace(0, 255, 36 * 28).reshape(28, 36).astype(np.uint8)]),
        "gray8": gray,
        "gray1": gray[..., None],
        "rgb16": rgb.astype(np.uint16) * 257,
        "gray16": gray.astype(np.uint16) * 257,
        "float32": rgb.astype(np.float32) / 255,
    }[kind]
    out = Upscaler(small_model(name), EngineOptions(tile=0)).upscale(img)
    s = 4
    assert out.dtype == img.dtype
    assert out.shape == (img.shape[0] * s, img.shape[1] * s, *img.shape[2:])
    if kind == "rgba8":  # alpha is upscaled on its own and kept
        alpha = out[..., 3].astype(float)
        assert abs(alpha.mean() - img[..., 3].mean()) < 3
    if kind == "rgb16":  # 16-bit output uses the full range, not 8-bit steps
        assert np.any(out % 257 != 0)


def test_bicubic_model_keeps_grey_grey_and_colours_close() -> None:
    img = photo("coffee", (48, 32))
    out = Upscaler(small_model("bicubic"), EngineOptions(tile=0)).upscale(img)
    small = out.reshape(32, 4, 48, 4, 3).mean(axis=(1, 3))
    assert np.abs(small - img).mean() < 6


def test_y_model_on_grey_input_keeps_values_for_identity_network() -> None:
    """A Y model whose network is the identity returns the bicubic-upsampled grey image unchanged in range."""

    class Identity(nn.Module):
        def __init__(self, *, scale: int) -> None:
            super().__init__()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    spec = ModelSpec(name="ident", build=Identity, scales=(2,), colour="y", input_kind="bicubic", needs_weights=False)
    model = build_model(spec, 2)
    gray = np.full((20, 24), 77, np.uint8)
    assert np.all(Upscaler(model, EngineOptions(tile=0)).upscale(gray) == 77)
    rgb = np.zeros((20, 24, 3), np.uint8)
    rgb[:] = (200, 40, 90)
    out = Upscaler(model, EngineOptions(tile=0)).upscale(rgb)
    assert np.abs(out.astype(int) - (200, 40, 90)).max() <= 1


def test_outscale_gives_any_final_size() -> None:
    img = photo("astronaut", (50, 40))
    up = Upscaler(small_model("bicubic"), EngineOptions(tile=0, outscale=2.5))
    assert up.scale == 2.5
    assert up.upscale(img).shape == (100, 125, 3)


def test_batches_across_frames_keep_order() -> None:
    model = small_model("srcnn")
    frames = [photo(n, (40, 32)) for n in ("astronaut", "coffee", "chelsea", "rocket", "coffee")]
    up = Upscaler(model, EngineOptions(tile=16, batch_size=5))
    single = [Upscaler(model, EngineOptions(tile=0)).upscale(f) for f in frames]
    for a, b in zip(up.upscale_many(iter(frames)), single, strict=True):
        assert np.abs(a.astype(int) - b).max() <= 1


class _OOMOverArea(nn.Module):
    """Bicubic x2 that raises CUDA's out-of-memory error when a batch holds more than ``max_pixels``."""

    def __init__(self, *, scale: int = 2, max_pixels: int = 90 * 90) -> None:
        super().__init__()
        self.scale, self.max_pixels, self.failures = scale, max_pixels, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] * x.shape[-1] * x.shape[-2] > self.max_pixels:
            self.failures += 1
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        from upscale.resize import imresize

        return imresize(x, scale=self.scale)


def test_out_of_memory_halves_batch_then_tile_without_restarting(caplog: pytest.LogCaptureFixture) -> None:
    spec = ModelSpec(name="oom", build=_OOMOverArea, scales=(2,), margin_px=3, needs_weights=False)
    model = build_model(spec, 2)
    img = photo("astronaut", (120, 100))
    expected = Upscaler(build_model(REGISTRY.get("bicubic"), 2), EngineOptions(tile=0)).upscale(img)
    up = Upscaler(model, EngineOptions(tile=0, batch_size=4))
    with caplog.at_level(logging.WARNING, logger="upscale.engine"):
        outs = [up.upscale(img) for _ in range(2)]
    for out in outs:
        assert np.abs(out.astype(int) - expected).max() <= 1
    assert up.tile_px == 60 and up.batch_size == 1
    assert any("tile size lowered" in r.message for r in caplog.records)
    assert any("batch size lowered" in r.message for r in caplog.records)
    # Once adapted, later frames run without a single failure.
    model.module.failures = 0
    assert np.abs(up.upscale(img).astype(int) - expected).max() <= 1
    assert model.module.failures == 0


class _Overflow(nn.Module):
    def __init__(self, *, scale: int = 2) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
        self.up = nn.Upsample(scale_factor=scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        big = x * 1e5 * self.w  # beyond fp16's range, fine in fp32 and bf16
        return self.up(big / 1e5)


_OVERFLOW = ModelSpec(name="overflow", build=_Overflow, scales=(2,), needs_weights=False)


def test_nonfinite_half_results_are_redone_in_fp32(caplog: pytest.LogCaptureFixture) -> None:
    model = build_model(_OVERFLOW, 2)
    img = photo("coffee", (32, 24))
    up = Upscaler(model, EngineOptions(tile=0, precision="bf16"))
    # bf16 has fp32's range; force the check with a half-precision run where the CPU supports it.
    up.dtype = torch.float16
    up.module = up.module.to(torch.float16)
    with caplog.at_level(logging.WARNING, logger="upscale.engine"):
        try:
            out = up.upscale(img)
        except (RuntimeError, NotImplementedError) as exc:  # pragma: no cover - CPU without fp16 kernels
            pytest.skip(f"no fp16 on this CPU: {exc}")
    ref = Upscaler(model, EngineOptions(tile=0, precision="fp32")).upscale(img)
    assert np.array_equal(out, ref)
    assert sum("non-finite" in r.message for r in caplog.records) == 1


def test_auto_fp16_that_overflows_goes_on_in_bf16_where_that_is_native(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``--precision auto`` is fp16 on CUDA. Where a batch overflows and the device has native bf16
    (CUDA from Ampere on), the run goes on in bf16 instead of redoing every such batch in fp32; an
    explicit ``--precision fp16`` is kept. Shown on the CPU with fp16 forced and bf16 declared native."""
    from upscale import engine

    monkeypatch.setattr(engine, "native_bf16", lambda device: True)
    model = build_model(_OVERFLOW, 2)
    frames = [photo("coffee", (32, 24)), photo("chelsea", (32, 24)), photo("rocket", (32, 24))]
    expected = list(Upscaler(model, EngineOptions(tile=0, precision="fp32")).upscale_many(iter(frames)))
    up = Upscaler(model, EngineOptions(tile=0))
    up._run_in(torch.float16)
    with caplog.at_level(logging.WARNING, logger="upscale.engine"):
        try:
            outs = list(up.upscale_many(iter(frames)))
        except (RuntimeError, NotImplementedError) as exc:  # pragma: no cover - CPU without fp16 kernels
            pytest.skip(f"no fp16 on this CPU: {exc}")
    assert up.dtype == torch.bfloat16
    messages = [r.message for r in caplog.records]
    assert sum("running in bf16 from here on" in m for m in messages) == 1
    assert not any("non-finite" in m for m in messages)
    for out, ref in zip(outs, expected, strict=True):
        assert np.abs(out.astype(int) - ref).max() <= 1

    fixed = Upscaler(model, EngineOptions(tile=0, precision="fp16"))
    assert fixed.dtype == torch.float16
    outs = list(fixed.upscale_many(iter(frames)))
    assert fixed.dtype == torch.float16
    assert all(np.array_equal(out, ref) for out, ref in zip(outs, expected, strict=True))


def test_bad_options_raise_clear_errors() -> None:
    model = small_model("bicubic")
    with pytest.raises(UpscaleError, match="batch size"):
        Upscaler(model, EngineOptions(batch_size=0))
    with pytest.raises(UpscaleError, match="CUDA is not available" if not torch.cuda.is_available() else "unknown"):
        Upscaler(model, EngineOptions(device="cuda:0" if not torch.cuda.is_available() else "nonsense"))
    with pytest.raises(UpscaleError, match="shape"):
        Upscaler(model).upscale(np.zeros((4, 4, 2), np.uint8))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fp16_matches_fp32() -> None:  # pragma: no cover - runs on GPU machines
    model = small_model("rlfn")
    img = photo("astronaut", (128, 96))
    a = Upscaler(model, EngineOptions(device="cuda", precision="fp16")).upscale(img)
    b = Upscaler(model, EngineOptions(device="cpu", precision="fp32")).upscale(img)
    assert np.abs(a.astype(int) - b).mean() < 1.0


@pytest.mark.parametrize("name", [s.name for s in REGISTRY if s.name != "bicubic"])
def test_cpu_channels_last_gives_the_nchw_result(name: str) -> None:
    """The engine runs convolutions in channels_last on the CPU (faster oneDNN kernels); its output
    stays that of the plain NCHW network, before any clipping or rounding."""
    spec = REGISTRY.get(name)
    loaded = build_model(spec, spec.default_scale)
    up = Upscaler(loaded, EngineOptions(device="cpu", precision="fp32", tile=0))
    kernels = [p for p in up.module.parameters() if p.ndim == 4]
    assert kernels and all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
    channels = 1 if spec.colour == "y" else 3
    size = max(spec.min_size_px, 16)
    x = torch.rand(1, channels, size, size, generator=torch.Generator().manual_seed(0))
    x_net = imresize(x, scale=spec.default_scale) if spec.input_kind == "bicubic" else x
    nchw = loaded.module.float().eval()
    with torch.inference_mode():
        want = nchw(x_net * spec.value_range) / spec.value_range
        got = up._forward_tensor(x, up.module, torch.float32)
    scale = want.abs().max().item() + 1e-6
    assert (got - want).abs().max().item() <= 1e-4 * scale


def test_cpu_auto_tile_fits_the_memory_at_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """ESRGAN x4 on a 1080p frame needs tens of GiB untiled: ``tile='auto'`` on a CPU picks tiles whose
    estimated working memory fits half of what is available, and leaves frames that fit untiled."""
    from upscale import engine
    from upscale.eval.flops import activation_bytes

    spec = REGISTRY.get("esrgan")
    loaded = build_model(spec, 4)
    monkeypatch.setattr(engine, "available_memory", lambda: 12 * 2**30)
    up = Upscaler(loaded, EngineOptions(device="cpu", precision="fp32"))
    tile = up._auto_tile(1080, 1920)
    assert 0 < tile < 1080
    window = tile + 2 * up.tile_pad
    need = engine.CPU_ESTIMATE_FACTOR * activation_bytes(loaded.module, (1, 3, window, window))
    assert need <= engine.CPU_MEMORY_SHARE * 12 * 2**30
    assert up._auto_tile(180, 320) == 0  # a small frame is not cut
    monkeypatch.setattr(engine, "available_memory", lambda: 2**40)
    assert Upscaler(loaded, EngineOptions(device="cpu"))._auto_tile(1080, 1920) == 0


def test_cpu_auto_tile_is_decided_for_each_frame_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch of photos of different sizes: a small first one must not leave a large one untiled."""
    from upscale import engine

    loaded = build_model(REGISTRY.get("rlfn"), 2)
    monkeypatch.setattr(engine, "available_memory", lambda: 64 * 2**20)
    up = Upscaler(loaded, EngineOptions(device="cpu", precision="fp32"))
    small, large = np.zeros((24, 32, 3), np.uint8), np.zeros((600, 800, 3), np.uint8)
    assert up.upscale(small).shape == (48, 64, 3) and up.tile_px == 0
    assert up.upscale(large).shape == (1200, 1600, 3) and 0 < up.tile_px < 600
    assert up.upscale(small).shape == (48, 64, 3) and up.tile_px == 0


_RSS_SCRIPT = """
import sys
import numpy as np
import torch
from upscale import engine
from upscale.eval.speed import peak_memory_bytes
from upscale.models import REGISTRY, build_model

engine.available_memory = lambda: int(sys.argv[1])
up = engine.Upscaler(build_model(REGISTRY.get("rlfn"), 4), engine.EngineOptions(device="cpu", precision="fp32"))
frame = (np.random.default_rng(0).random((1024, 1024, 3)) * 255).astype(np.uint8)
cpu = torch.device("cpu")
before, kind = peak_memory_bytes(cpu)
up.upscale(frame)
assert kind == "process peak RSS"
print(up.tile_px, peak_memory_bytes(cpu)[0] - before)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
def test_cpu_auto_tile_bounds_the_real_peak_memory() -> None:
    """Measured, not estimated: RLFN x4 on a 1024x1024 frame grows the process by about 1 GiB untiled;
    told that 1 GiB is available, the engine tiles and stays within its 512 MiB budget plus the fixed
    cost of a first forward pass (kernels and caches loaded on first use), well below the untiled run."""
    import subprocess
    import sys

    from upscale import engine

    def run(available: int) -> tuple[int, int]:
        out = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, str(available)], capture_output=True, text=True, check=True
        )
        tile, grown = out.stdout.split()
        return int(tile), int(grown)

    untiled_tile, untiled = run(2**40)
    tiled_tile, tiled = run(2**30)
    mib = f"untiled {untiled / 2**20:.0f} MiB, tile {tiled_tile}: {tiled / 2**20:.0f} MiB"
    assert untiled_tile == 0 and 0 < tiled_tile < 1024, mib
    assert tiled <= engine.CPU_MEMORY_SHARE * 2**30 + 256 * 2**20, mib
    assert tiled < 0.8 * untiled, mib


class _ThreadNames(nn.Module):
    """Bicubic x2 that records which thread ran each batch."""

    def __init__(self, *, scale: int = 2) -> None:
        super().__init__()
        self.scale, self.threads = scale, set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import threading

        self.threads.add(threading.current_thread().name)
        return imresize(x, scale=self.scale)


def test_several_devices_take_frames_in_turn_and_keep_their_order() -> None:
    """``--device cpu,cpu`` runs the same dealing, threads and ordering as ``cuda:0,cuda:1``."""
    model = small_model("srcnn")
    sizes = [(40, 32), (40, 32), (56, 24), (40, 32), (33, 47), (40, 32), (56, 24)]
    names = ["astronaut", "coffee", "chelsea", "rocket"]
    frames = [photo(names[i % 4], size) for i, size in enumerate(sizes)]
    one = list(Upscaler(model, EngineOptions(device="cpu", tile=16, batch_size=2)).upscale_many(iter(frames)))
    two = Upscaler(model, EngineOptions(device="cpu,cpu", tile=16, batch_size=2))
    assert [r.device.type for r in two._replicas] == ["cpu", "cpu"]
    spread = list(two.upscale_many(iter(frames)))
    assert len(spread) == len(frames)
    for a, b in zip(spread, one, strict=True):
        assert np.array_equal(a, b)

    spec = ModelSpec(name="threads", build=_ThreadNames, scales=(2,), needs_weights=False)
    counted = build_model(spec, 2)
    list(Upscaler(counted, EngineOptions(device="cpu,cpu", tile=0)).upscale_many(iter(frames)))
    assert counted.module.threads == {"upscale-device0", "upscale-device1"}


def test_several_devices_raise_a_bad_frame_after_the_frames_before_it() -> None:
    up = Upscaler(small_model("bicubic"), EngineOptions(device="cpu,cpu", tile=0))
    good = photo("coffee", (24, 16))
    frames = [good, good, np.zeros((4, 4, 2), np.uint8), good]
    outs = up.upscale_many(iter(frames))
    assert next(outs).shape == next(outs).shape == (64, 96, 3)
    with pytest.raises(UpscaleError, match="shape"):
        next(outs)


def test_batches_left_running_give_the_same_frames() -> None:
    """CUDA leaves one batch running while the host stitches the one before; the same bookkeeping
    on the CPU must give the frames unchanged and in order."""
    model = small_model("srcnn")
    frames = [photo(n, (40, 32)) for n in ("astronaut", "coffee", "chelsea", "rocket", "coffee")]
    plain = list(Upscaler(model, EngineOptions(tile=16, batch_size=3)).upscale_many(iter(frames)))
    up = Upscaler(model, EngineOptions(tile=16, batch_size=3))
    up._in_flight = 2
    for a, b in zip(up.upscale_many(iter(frames)), plain, strict=True):
        assert np.array_equal(a, b)


def test_compiled_network_gives_the_plain_result() -> None:
    from torch._dynamo.utils import counters

    model = small_model("srcnn")
    img = photo("chelsea", (48, 40))
    plain = Upscaler(model, EngineOptions(tile=0, precision="fp32")).upscale(img)
    counters.clear()
    up = Upscaler(model, EngineOptions(tile=0, precision="fp32", compile=True))
    compiled = up.upscale(img)
    assert counters["stats"]["unique_graphs"] >= 1, "nothing was compiled"
    assert np.abs(compiled.astype(int) - plain).max() <= 1


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_streams_give_the_synchronous_result() -> None:  # pragma: no cover - runs on GPU machines
    model = small_model("rlfn")
    frames = [photo(n, (96, 80)) for n in ("astronaut", "coffee", "chelsea", "rocket")]
    overlapped = Upscaler(model, EngineOptions(device="cuda", precision="fp32", tile=48, batch_size=2))
    assert overlapped._streams is not None and overlapped._in_flight == 1
    plain = Upscaler(model, EngineOptions(device="cuda", precision="fp32", tile=48, batch_size=2))
    plain._streams, plain._in_flight = None, 0
    for a, b in zip(overlapped.upscale_many(iter(frames)), plain.upscale_many(iter(frames)), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_two_gpus_give_the_one_gpu_result() -> None:  # pragma: no cover - runs on multi-GPU machines
    model = small_model("rlfn")
    frames = [photo(n, (96, 80)) for n in ("astronaut", "coffee", "chelsea", "rocket", "coffee")]
    one = Upscaler(model, EngineOptions(device="cuda:0", precision="fp32", tile=0))
    two = Upscaler(model, EngineOptions(device="cuda:0,cuda:1", precision="fp32", tile=0))
    assert [str(r.device) for r in two._replicas] == ["cuda:0", "cuda:1"]
    for a, b in zip(two.upscale_many(iter(frames)), one.upscale_many(iter(frames)), strict=True):
        assert np.abs(a.astype(int) - b).max() <= 1
