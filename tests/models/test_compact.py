"""SRVGGNetCompact (``compact``): sizes, the authors' file layout, detection beside the other models, exact
tiling, the CLI with a file, with the official names (served locally) and with ``--denoise``, training,
and spandrel's implementation of the same network."""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from tests import test_hub as hub_tests
from tests.conftest import photo, read_rgb, write_rgb
from tests.models.checks import assert_tile_matches_whole
from tests.test_hub import Served
from upscale import hub
from upscale.cli import main
from upscale.engine import EngineOptions, Upscaler
from upscale.models import REGISTRY, Registry, build_model, load_model, model_of_weights, read_state_dict
from upscale.models.compact import COMPACT_SPEC, GENERAL, GENERAL_WDN, receptive_radius
from upscale.models.nets.compact import SRVGGNetCompact

server = hub_tests.server  # the local HTTP server
home = hub_tests.home  # an empty cache under UPSCALE_HOME


def realistic(net: SRVGGNetCompact, *, seed: int = 0, residual: float = 0.05) -> SRVGGNetCompact:
    """Random weights of a trained network's scale: convolutions that keep the activations' variance
    through the PReLUs, slopes like the released files', and a last convolution scaled so the residual
    added to the nearest-upsampled input has a standard deviation of ``residual`` on a photo (the default
    initialisation lets the activations die out over 34 layers, which would hide any difference)."""
    g = torch.Generator().manual_seed(seed)
    convs = [m for m in net.body if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        for conv in convs:
            fan_in = conv.in_channels * 9
            conv.weight.normal_(0.0, (2.0 / (1.0 + 0.2**2) / fan_in) ** 0.5, generator=g)
            conv.bias.normal_(0.0, 0.01, generator=g)
        for prelu in (m for m in net.body if isinstance(m, nn.PReLU)):
            prelu.weight.uniform_(0.05, 0.35, generator=g)
        x = _tensor(photo("astronaut", (48, 48)))
        base = torch.nn.functional.interpolate(x, scale_factor=net.scale, mode="nearest")
        spread = (net.eval()(x) - base).std()
        convs[-1].weight.mul_(residual / spread)
        convs[-1].bias.mul_(residual / spread)
    return net.eval()


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None].contiguous()


def forward_uint8(net: nn.Module, rgb: np.ndarray) -> np.ndarray:
    """What the network makes of an 8-bit RGB image, as an 8-bit image (the engine's rounding)."""
    with torch.inference_mode():
        y = net(_tensor(rgb)).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return np.rint(y * 255).astype(np.uint8)


def assert_same_image(got: np.ndarray, expected: np.ndarray) -> None:
    """Equal but for float rounding: the engine's fused channels-last kernels sum in another order, which
    may move a value sitting on .5 of a level to the other side."""
    assert got.shape == expected.shape
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (diff.max(), (diff > 0).mean())


def _state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.contiguous() for k, v in net.state_dict().items()}


def _pth(sd: dict[str, torch.Tensor], wrapper: str | None) -> bytes:
    buf = io.BytesIO()
    torch.save(sd if wrapper is None else {wrapper: sd}, buf)
    return buf.getvalue()


def run(*args: str | Path, data: bytes | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], input=data)


# ------------------------------------------------------------------------------------ the network


@pytest.mark.parametrize(("num_conv", "params"), [(16, 621_424), (32, 1_213_296)])
def test_released_sizes(num_conv: int, params: int) -> None:
    """realesr-animevideov3 (16 convolutions) and realesr-general-x4v3 (32) at x4."""
    assert build_model(COMPACT_SPEC, 4, num_conv=num_conv).num_params == params


def test_key_layout_is_the_authors() -> None:
    sd = build_model(COMPACT_SPEC, 4, num_conv=2).module.state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == {
        "body.0.weight": (64, 3, 3, 3),
        "body.0.bias": (64,),
        "body.1.weight": (64,),
        "body.2.weight": (64, 64, 3, 3),
        "body.2.bias": (64,),
        "body.3.weight": (64,),
        "body.4.weight": (64, 64, 3, 3),
        "body.4.bias": (64,),
        "body.5.weight": (64,),
        "body.6.weight": (48, 64, 3, 3),
        "body.6.bias": (48,),
    }


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_output_shape_and_the_skip(scale: int) -> None:
    """With a silent body the network is nearest-neighbour upsampling."""
    net = build_model(COMPACT_SPEC, scale, num_conv=1, num_feat=8).module
    with torch.no_grad():
        net.body[-1].weight.zero_()
        net.body[-1].bias.zero_()
    x = torch.rand(1, 3, 10, 14)
    y = net(x)
    assert y.shape == (1, 3, 10 * scale, 14 * scale)
    torch.testing.assert_close(y, x.repeat_interleave(scale, 2).repeat_interleave(scale, 3), rtol=0, atol=0)


# ---------------------------------------------------------------------------- files and detection


@pytest.mark.parametrize(
    ("suffix", "wrapper", "hparams", "scale"),
    [
        (".safetensors", None, {"num_conv": 16}, 4),
        (".pth", "params", {"num_conv": 16}, 4),  # how the authors publish them
        (".pth", "params_ema", {"num_conv": 3, "num_feat": 24}, 2),
        (".pth", None, {"num_conv": 0, "num_feat": 8}, 1),
    ],
)
def test_files_round_trip_and_are_detected(
    suffix: str, wrapper: str | None, hparams: dict[str, int], scale: int, tmp_path: Path
) -> None:
    net = realistic(build_model(COMPACT_SPEC, scale, **hparams).module)
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        save_file(_state(net), str(path))  # no metadata: the tensors alone must say what they are
    else:
        path.write_bytes(_pth(_state(net), wrapper))
    assert model_of_weights(path) == "compact"
    assert COMPACT_SPEC.hparams_from(read_state_dict(path)) == {
        "scale": scale,
        "num_in_ch": 3,
        "num_out_ch": 3,
        "num_feat": hparams.get("num_feat", 64),
        "num_conv": hparams["num_conv"],
    }
    loaded = load_model("compact", weights=path)
    assert loaded.scale == scale and loaded.num_params == sum(p.numel() for p in net.parameters())
    x = torch.rand(1, 3, 12, 9)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), net(x), rtol=0, atol=0)


def test_detection_leaves_every_other_model_as_it_was() -> None:
    """Each model's random state dict is identified as before ``compact`` was added, none is taken
    for ``compact``, and ``compact``'s own are (x1 to x4, 0 to 32 convolutions)."""
    before = Registry([s for s in REGISTRY if s.name != "compact"])
    for spec in REGISTRY:
        if not spec.needs_weights or spec.name == "compact":
            continue
        for scale in spec.scales[-2:]:
            sd = build_model(spec, scale).module.state_dict()
            assert not COMPACT_SPEC.detect(sd), spec.name
            found, was = REGISTRY.identify(sd), before.identify(sd)
            assert (found and found.name) == (was and was.name), spec.name
    for scale, num_conv in ((1, 0), (2, 5), (3, 16), (4, 32)):
        sd = build_model(COMPACT_SPEC, scale, num_conv=num_conv).module.state_dict()
        assert REGISTRY.identify(sd) is COMPACT_SPEC
        assert before.identify(sd) is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda sd: sd.pop("body.3.weight"),  # a PReLU missing
        lambda sd: sd.update({"body.1.weight": torch.ones(1)}),  # a single-slope PReLU
        lambda sd: sd.update({"conv_last.weight": torch.ones(3, 64, 3, 3)}),  # a foreign key
        lambda sd: sd.update({"body.0.weight": torch.ones(64, 3, 5, 5)}),  # not 3x3
    ],
)
def test_near_misses_are_not_compact(damage) -> None:
    sd = dict(build_model(COMPACT_SPEC, 4, num_conv=2).module.state_dict())
    damage(sd)
    assert not COMPACT_SPEC.detect(sd)


# --------------------------------------------------------------------------------------- tiling


def test_receptive_field_is_exactly_num_conv_plus_two() -> None:
    """A tile with ``num_conv + 2`` pixels of context gives the whole image's output; one pixel less does not."""
    num_conv = 6
    net = realistic(build_model(COMPACT_SPEC, 2, num_conv=num_conv, num_feat=16).module)
    lr = _tensor(photo("chelsea", (64, 48)))
    radius = receptive_radius(num_conv)
    assert_tile_matches_whole(net, lr, margin=radius, scale=2, box=(12, 14, 34, 44), atol=1e-5)
    with pytest.raises(AssertionError):
        assert_tile_matches_whole(net, lr, margin=radius - 1, scale=2, box=(12, 14, 34, 44), atol=1e-5)


def test_engine_tiles_give_the_untiled_output() -> None:
    """The engine's default tile pad covers realesr-general-x4v3's 32 convolutions: tiled == untiled."""
    assert COMPACT_SPEC.exact_tiling and COMPACT_SPEC.margin_px == receptive_radius(32)
    loaded = build_model(COMPACT_SPEC, 4)
    realistic(loaded.module)
    img = photo("coffee", (112, 80)).astype(np.float32) / 255
    whole = Upscaler(loaded, EngineOptions(device="cpu", precision="fp32", tile=0)).upscale(img)
    tiled = Upscaler(loaded, EngineOptions(device="cpu", precision="fp32", tile=32)).upscale(img)
    assert tiled.shape == whole.shape == (320, 448, 3)
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=2e-5)


# ------------------------------------------------------------------------------------------ CLI


def test_cli_runs_a_file_as_the_network_does(tmp_path: Path) -> None:
    """``--weights FILE`` alone (no -m): the authors' ``params`` layout is detected, and the PNG written
    is the network's own output."""
    net = realistic(build_model(COMPACT_SPEC, 4, num_conv=16).module)
    weights = tmp_path / "realesr-animevideov3.pth"
    weights.write_bytes(_pth(_state(net), "params"))
    src = write_rgb(tmp_path / "in.png", photo("astronaut", (40, 32)))
    out = tmp_path / "out.png"
    result = run("images", src, "-o", out, "--weights", weights, "--precision", "fp32", "--tile", "0")
    assert result.exit_code == 0, result.output
    assert f"model compact x4, weights: {weights}" in result.stderr
    assert_same_image(read_rgb(out), forward_uint8(net, photo("astronaut", (40, 32))))


def test_models_lists_it_with_its_official_default() -> None:
    result = run("models")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("compact "))
    assert "1,213,296 (x4)" in line and f"official: {GENERAL} (x4)" in line and "Real-ESRGAN" in line


def test_catalogue_entries() -> None:
    entries = {e.name: e for e in hub.CATALOGUE if e.model == "compact"}
    assert list(entries) == [GENERAL, "realesr-animevideov3", GENERAL_WDN]  # the bare name's first
    for e in entries.values():
        assert e.url == f"https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.5.0/{e.name}.pth"
        assert e.licence == "BSD-3-Clause" and e.scale == 4 and e.sha256 and e.size_bytes
    # The two general files hold the same tensors (32 convolutions), animevideov3 about half of them.
    anime = entries["realesr-animevideov3"].size_bytes
    assert entries[GENERAL].size_bytes == entries[GENERAL_WDN].size_bytes > 2 * 0.95 * anime


def _serve(server: Served, monkeypatch: pytest.MonkeyPatch, files: dict[str, bytes]) -> None:
    """The catalogue's entries of ``files`` pointed at the local server, with the stand-ins' sha256 and size."""
    entries = {}
    for name, payload in files.items():
        server.files[f"/{name}.pth"] = payload
        entries[name] = replace(
            hub.find(name),
            url=server.url(f"/{name}.pth"),
            sha256=hashlib.sha256(payload).hexdigest(),
            size_bytes=len(payload),
        )
    monkeypatch.setattr(hub, "CATALOGUE", tuple(entries.get(e.name, e) for e in hub.CATALOGUE))


@pytest.fixture
def general_pair() -> tuple[nn.Module, nn.Module, dict[str, bytes]]:
    """Stand-ins for realesr-general-x4v3 and its wdn twin (small: 2 convolutions of 16), as published."""
    plain = realistic(build_model(COMPACT_SPEC, 4, num_conv=2, num_feat=16).module, seed=1)
    wdn = realistic(build_model(COMPACT_SPEC, 4, num_conv=2, num_feat=16).module, seed=2)
    return plain, wdn, {GENERAL: _pth(_state(plain), "params"), GENERAL_WDN: _pth(_state(wdn), "params")}


def blend(plain: nn.Module, wdn: nn.Module, denoise: float) -> nn.Module:
    """Real-ESRGAN's dni: ``denoise·plain + (1 − denoise)·wdn``, tensor by tensor."""
    net = build_model(COMPACT_SPEC, 4, num_conv=2, num_feat=16).module
    a, b = plain.state_dict(), wdn.state_dict()
    net.load_state_dict({k: (denoise * a[k].double() + (1 - denoise) * b[k].double()).float() for k in a})
    return net.eval()


def test_bare_name_and_denoise_fetch_the_official_files(
    server: Served, home: Path, general_pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, wdn, files = general_pair
    _serve(server, monkeypatch, files)
    rgb = photo("chelsea", (36, 28))
    src = write_rgb(tmp_path / "in.png", rgb)
    cache = home / "weights"
    common = ["--precision", "fp32", "--tile", "0", "--overwrite"]

    # The bare name: realesr-general-x4v3 alone, downloaded on first use.
    result = run("images", src, "-o", tmp_path / "bare.png", "-m", "compact", *common)
    assert result.exit_code == 0, result.output
    assert f"weights: {GENERAL} (download)" in result.stderr
    assert sorted(p.name for p in cache.glob("*.pth")) == [f"{GENERAL}.pth"]
    assert_same_image(read_rgb(tmp_path / "bare.png"), forward_uint8(plain, rgb))

    # --denoise 1 is that file alone: nothing more is fetched.
    result = run("images", src, "-o", tmp_path / "dn1.png", "-m", "compact", "--denoise", "1", *common)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in cache.glob("*.pth")) == [f"{GENERAL}.pth"]
    assert_same_image(read_rgb(tmp_path / "dn1.png"), forward_uint8(plain, rgb))

    # --denoise 0.3 fetches the twin and runs the blend; the name alone says which model it is.
    result = run("images", src, "-o", tmp_path / "dn.png", "--weights", GENERAL, "--denoise", "0.3", *common)
    assert result.exit_code == 0, result.output
    assert f"{GENERAL} + {GENERAL_WDN} blended at denoise 0.3" in result.stderr
    assert sorted(p.name for p in cache.glob("*.pth")) == [f"{GENERAL_WDN}.pth", f"{GENERAL}.pth"]
    expected = forward_uint8(blend(plain, wdn, 0.3), rgb)
    assert_same_image(read_rgb(tmp_path / "dn.png"), expected)
    assert not np.array_equal(expected, forward_uint8(plain, rgb))

    # pipe takes it too (and video, through the same options).
    frame = np.ascontiguousarray(rgb)
    result = CliRunner().invoke(
        main,
        ["pipe", "--raw", "36x28", "-m", "compact", "--denoise", "0.3", "--precision", "fp32", "-q"],
        input=frame.tobytes(),
    )
    assert result.exit_code == 0, result.stderr
    assert_same_image(np.frombuffer(result.stdout_bytes, np.uint8).reshape(112, 144, 3), expected)

    # Offline, from the cache alone.
    result = run("images", src, "-o", tmp_path / "dn0.png", "-m", "compact", "--denoise", "0", "--offline", *common)
    assert result.exit_code == 0, result.output
    assert_same_image(read_rgb(tmp_path / "dn0.png"), forward_uint8(wdn, rgb))


def test_weights_names_the_anime_video_file(
    server: Served, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--weights realesr-animevideov3``: the catalogue says which model it is; fetched on first use."""
    anime = realistic(build_model(COMPACT_SPEC, 4, num_conv=1, num_feat=16).module, seed=3)
    _serve(server, monkeypatch, {"realesr-animevideov3": _pth(_state(anime), "params")})
    rgb = photo("rocket", (30, 24))
    src = write_rgb(tmp_path / "in.png", rgb)
    out = tmp_path / "out.png"
    result = run("images", src, "-o", out, "--weights", "realesr-animevideov3", "--precision", "fp32", "--tile", "0")
    assert result.exit_code == 0, result.output
    assert "model compact x4, weights: realesr-animevideov3" in result.stderr
    assert (home / "weights" / "realesr-animevideov3.pth").is_file()
    assert_same_image(read_rgb(out), forward_uint8(anime, rgb))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "rlfn", "--denoise", "0.5"], "not model 'rlfn'"),
        (["--denoise", "0.5"], "works with -m compact only"),  # the default model is another one
        (["-m", "compact", "--weights", "realesr-animevideov3", "--denoise", "0.5"], "not --weights realesr-anime"),
        (["--weights", "realesr-animevideov3", "--denoise", "0.5"], "not --weights realesr-animevideov3"),
        (["-m", "compact", "--denoise", "1.5"], "--denoise"),
    ],
)
def test_denoise_with_anything_else_is_a_usage_error(args: list[str], message: str, home: Path, tmp_path: Path) -> None:
    src = write_rgb(tmp_path / "in.png", photo("astronaut", (16, 16)))
    result = run("images", src, "-o", tmp_path / "out.png", *args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert not (home / "weights").exists()  # refused before any download


@pytest.mark.parametrize("command", ["video", "pipe"])
def test_video_and_pipe_take_denoise(command: str) -> None:
    assert "--denoise" in run(command, "--help").output


# -------------------------------------------------------------------------------------- training


def test_train_with_the_l1_recipe(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_rgb(data / "chelsea.png", photo("chelsea", (64, 64)))
    out = tmp_path / "run"
    args = ["train", "compact", "--scale", "4", "--data", data, "--out", out, "--arch", "num_conv=2"]
    result = run(*args, "--arch", "num_feat=16", "--patch", "32", "--batch-size", "2", "--iters", "3", "-q")
    assert result.exit_code == 0, result.output
    final = out / "final.safetensors"
    with safe_open(str(final), framework="pt") as f:
        meta = f.metadata()
    assert (meta["model"], meta["scale"], meta["recipe"]) == ("compact", "4", "realesrnet-compact")
    loaded = load_model("compact", weights=final)
    assert (loaded.scale, len(loaded.module.body)) == (4, 2 * 2 + 3)


# ------------------------------------------------------------------------------ spandrel reference


@pytest.mark.parametrize(("num_conv", "scale"), [(16, 4), (32, 4), (3, 2), (1, 1)])
def test_outputs_equal_spandrels_compact(num_conv: int, scale: int) -> None:
    """spandrel's ``Compact`` is Real-ESRGAN's SRVGGNetCompact: the same random weights give the same
    output in fp32, and spandrel's loader takes our state dict for its Compact."""
    spandrel = pytest.importorskip("spandrel")
    from spandrel.architectures.Compact import Compact

    ours = realistic(SRVGGNetCompact(scale=scale, num_conv=num_conv))
    ref = Compact(num_conv=num_conv, upscale=scale).eval()
    ref.load_state_dict(ours.state_dict(), strict=True)
    x = _tensor(photo("astronaut", (64, 48)))
    with torch.no_grad():
        diff = (ours(x) - ref(x)).abs().max().item()
    assert diff <= 1e-6, diff
    descriptor = spandrel.ModelLoader().load_from_state_dict(_state(ours))
    assert descriptor.architecture.id == "Compact" and descriptor.scale == scale
