"""Weights of architectures outside the zoo, loaded with spandrel (``upscale[models]``), through the real CLI.

Small random-weight networks of spandrel's own architecture classes are saved as a user's file would be
(.pth, .safetensors) and run by ``upscale images`` / ``upscale pipe``; the output must equal spandrel's
own forward pass on the same input. The tests marked ``needs_spandrel`` skip where spandrel cannot be
imported (it is not in the ``test`` extra: its torchvision may not fit the installed torch); the others
check the one-line errors without it.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from tests.conftest import photo, read_rgb, write_rgb
from upscale.cli import main
from upscale.errors import WeightsError
from upscale.jobs import PREFIX


def _spandrel() -> ModuleType | None:
    try:
        import spandrel
    except Exception:  # noqa: BLE001 - a torchvision that does not fit torch raises RuntimeError
        return None
    return spandrel


needs_spandrel = pytest.mark.skipif(_spandrel() is None, reason="spandrel (upscale[models]) cannot be imported")
EXTRA_LINE = (
    '{}: holds no architecture of the zoo; pip install "upscale[models]" to load it with spandrel '
    "(SwinIR, HAT, DAT, ...)"
)


def cli(*args: str | Path, input: bytes | None = None) -> tuple[int, str, bytes]:
    result = CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)
    return result.exit_code, result.stderr, result.stdout_bytes


def upscale_png(folder: Path, weights: Path, *args: str) -> tuple[int, str]:
    """``upscale images in.png -o out.png --weights WEIGHTS --precision fp32 ARGS`` in ``folder``."""
    base = ["images", folder / "in.png", "-o", folder / "out.png", "--weights", weights, "--precision", "fp32"]
    code, err, _ = cli(*base, *args)
    return code, err


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def unknown_tensors(path: Path) -> Path:
    """A file of tensors nobody's architecture uses."""
    g = torch.Generator().manual_seed(1)
    sd = {
        "alpha.weight": torch.randn(7, 3, 3, 3, generator=g),
        "beta.gamma": torch.randn(5, generator=g),
        "delta": torch.randn(2, 2, generator=g),
        "epsilon.kernel": torch.randn(4, 4, 1, 1, generator=g),
    }
    save_file(sd, str(path))
    return path


# ------------------------------------------------------------------------------------------ without spandrel
def test_without_spandrel_the_error_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "spandrel", None)  # import fails as for a package that is not installed
    write_rgb(tmp_path / "in.png", photo("astronaut", (24, 20)))
    weights = unknown_tensors(tmp_path / "foreign.safetensors")
    code, err, _ = cli("images", tmp_path / "in.png", "-o", tmp_path / "out.png", "--weights", weights)
    assert code == 1
    assert error_lines(err) == ["Error: " + EXTRA_LINE.format(weights)], err
    assert not (tmp_path / "out.png").exists()


class _BrokenSpandrel(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """spandrel as it fails beside a torchvision built for another torch."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(name, self) if name == "spandrel" else None

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        raise RuntimeError("operator torchvision::nms does not exist")


def test_a_spandrel_that_fails_on_import_gives_the_same_line_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "spandrel", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_BrokenSpandrel(), *sys.meta_path])
    write_rgb(tmp_path / "in.png", photo("astronaut", (24, 20)))
    weights = unknown_tensors(tmp_path / "foreign.safetensors")
    code, err, _ = cli("images", tmp_path / "in.png", "-o", tmp_path / "out.png", "--weights", weights)
    assert code == 1
    assert error_lines(err) == [
        "Error: "
        + EXTRA_LINE.format(weights)
        + ": importing spandrel failed (RuntimeError: operator torchvision::nms does not exist)"
    ], err


# ------------------------------------------------------------------------------------------ small networks
def _swinir() -> torch.nn.Module:
    from spandrel.architectures.SwinIR import SwinIR

    return SwinIR(
        upscale=2, img_size=32, window_size=4, embed_dim=12, depths=[2], num_heads=[2], mlp_ratio=2,
        upsampler="pixelshuffledirect",
    )  # fmt: skip


def _span() -> torch.nn.Module:
    from spandrel.architectures.SPAN import SPAN

    return SPAN(num_in_ch=3, num_out_ch=3, feature_channels=12, upscale=2)


def _omnisr(channels: int = 3) -> torch.nn.Module:
    from spandrel.architectures.OmniSR import OmniSR

    return OmniSR(
        num_in_ch=channels, num_out_ch=channels, num_feat=16, block_num=1, pe=True, window_size=4, res_num=1,
        up_scale=2,
    )  # fmt: skip


def _dat() -> torch.nn.Module:
    from spandrel.architectures.DAT import DAT

    return DAT(
        upscale=2, embed_dim=32, depth=[2], num_heads=[2], split_size=[2, 4], expansion_factor=2,
        resi_connection="1conv", upsampler="pixelshuffledirect",
    )  # fmt: skip


ARCHS: dict[str, Callable[[], torch.nn.Module]] = {"SwinIR": _swinir, "SPAN": _span, "OmniSR": _omnisr, "DAT": _dat}


def save(net: torch.nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """``net``'s state dict written as a user's download would be: safetensors, or a pickled state dict."""
    sd = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    if path.suffix == ".safetensors":
        save_file(sd, str(path))
    else:
        torch.save(sd, path)
    return sd


def made(arch: str, path: Path, **kw: Any) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    net = (ARCHS[arch](**kw) if kw else ARCHS[arch]()).eval()
    return path, save(net, path)


def spandrel_forward(sd: dict[str, torch.Tensor], img: np.ndarray) -> np.ndarray:
    """spandrel's own result for ``img`` (uint8 H×W×C or H×W), rounded to uint8 as an image file holds it."""
    spandrel = _spandrel()
    assert spandrel is not None
    model = spandrel.ModelLoader().load_from_state_dict({k: v.clone() for k, v in sd.items()})
    planes = img[None] if img.ndim == 2 else img.transpose(2, 0, 1)
    x = torch.from_numpy(np.ascontiguousarray(planes)).float()[None] / 255.0
    y = model(x)[0].numpy()
    y = y[0] if img.ndim == 2 else y.transpose(1, 2, 0)
    return np.rint(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8)


def diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    assert a.shape == b.shape, (a.shape, b.shape)
    return np.abs(a.astype(np.int16) - b.astype(np.int16))


# ------------------------------------------------------------------------------------------ with spandrel
@needs_spandrel
@pytest.mark.parametrize(
    ("arch", "suffix"), [("SwinIR", ".pth"), ("SPAN", ".safetensors"), ("OmniSR", ".safetensors"), ("DAT", ".pth")]
)
def test_cli_output_equals_spandrels_own_forward(arch: str, suffix: str, tmp_path: Path) -> None:
    weights, sd = made(arch, tmp_path / f"net{suffix}")
    img = photo("astronaut", (53, 41))  # odd sides: SwinIR pads to its window, the engine to the minimum of 16
    write_rgb(tmp_path / "in.png", img)
    code, err = upscale_png(tmp_path, weights)
    assert code == 0, err
    assert err.splitlines()[0] == f"model spandrel:{arch} x2, weights: {weights}"
    assert diff(read_rgb(tmp_path / "out.png"), spandrel_forward(sd, img)).max() <= 1  # rounding to uint8 only


@needs_spandrel
def test_tiled_span_equals_untiled(tmp_path: Path) -> None:
    # SPAN is convolutions only, its receptive field well inside the 32-pixel margin spandrel's SUPPORTED
    # tiling gets: tiles of 32 with the default pad (36) stitch to the untiled result.
    weights, sd = made("SPAN", tmp_path / "span.safetensors")
    img = photo("coffee", (128, 96))
    write_rgb(tmp_path / "in.png", img)
    code, err = upscale_png(tmp_path, weights, "--tile", "32")
    assert code == 0, err
    assert diff(read_rgb(tmp_path / "out.png"), spandrel_forward(sd, img)).max() <= 1


@needs_spandrel
def test_tiled_omnisr_approximates_untiled(tmp_path: Path) -> None:
    # OmniSR's blocks pool over the whole input (channel attention), so a tile sees other statistics than
    # the whole image wherever its pixel lies, however wide the margin: tiling only approximates (the spec
    # says exact_tiling=False). Measured with these random weights at 128x96, --tile 32 --tile-pad 16: mean
    # 0.43, max 7 grey levels, 9 % of samples off by more than 1 (mean 0.6, max 8 on another photo); the
    # bounds are about twice that.
    weights, sd = made("OmniSR", tmp_path / "omnisr.safetensors")
    img = photo("coffee", (128, 96))
    write_rgb(tmp_path / "in.png", img)
    code, err = upscale_png(tmp_path, weights, "--tile", "32", "--tile-pad", "16")
    assert code == 0, err
    d = diff(read_rgb(tmp_path / "out.png"), spandrel_forward(sd, img))
    assert d.mean() <= 1.5 and d.max() <= 16, (d.mean(), d.max())


@needs_spandrel
def test_a_greyscale_model_runs_on_grey_images(tmp_path: Path) -> None:
    # (not SPAN: spandrel's SPAN subtracts an RGB mean whatever its channels, and so returns three)
    weights, sd = made("OmniSR", tmp_path / "grey.safetensors", channels=1)
    grey = photo("camera", (40, 32))[..., 0]
    write_rgb(tmp_path / "in.png", grey)
    code, err = upscale_png(tmp_path, weights)
    assert code == 0, err
    out = read_rgb(tmp_path / "out.png")
    assert out.ndim == 2
    assert diff(out, spandrel_forward(sd, grey)).max() <= 1


@needs_spandrel
def test_raw_frames_through_a_pipe(tmp_path: Path) -> None:
    weights, sd = made("SPAN", tmp_path / "span.pth")
    frames = [photo(name, (40, 24)) for name in ("astronaut", "coffee")]
    args = ["pipe", "--weights", weights, "--precision", "fp32", "--raw", "40x24", "--pix-fmt", "rgb24"]
    code, err, out = cli(*args, input=b"".join(f.tobytes() for f in frames))
    assert code == 0, err
    got = np.frombuffer(out, np.uint8).reshape(2, 48, 80, 3)
    for g, f in zip(got, frames, strict=True):
        assert diff(g, spandrel_forward(sd, f)).max() <= 1


@needs_spandrel
def test_zoo_layouts_keep_priority(tmp_path: Path) -> None:
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    weights = tmp_path / "rrdb.pth"
    sd = save(ESRGAN(num_filters=16, num_blocks=2, scale=4).eval(), weights)
    spandrel = _spandrel()
    assert spandrel.ModelLoader().load_from_state_dict(dict(sd)).architecture.id == "ESRGAN"  # both know it
    img = photo("astronaut", (24, 20))
    write_rgb(tmp_path / "in.png", img)
    code, err = upscale_png(tmp_path, weights)
    assert code == 0, err
    assert err.splitlines()[0] == f"model esrgan x4, weights: {weights}"
    assert diff(read_rgb(tmp_path / "out.png"), spandrel_forward(sd, img)).max() <= 1


@needs_spandrel
def test_file_nobody_reads_gives_one_line_listing(tmp_path: Path) -> None:
    weights = unknown_tensors(tmp_path / "mystery.safetensors")
    write_rgb(tmp_path / "in.png", photo("astronaut", (24, 20)))
    code, err, _ = cli("images", tmp_path / "in.png", "-o", tmp_path / "out.png", "--weights", weights)
    assert code == 1
    assert error_lines(err) == [
        f"Error: {weights}: holds weights of no architecture the zoo or spandrel knows "
        "(4 tensors: alpha.weight 7x3x3x3, beta.gamma 5, delta 2x2, ...)"
    ], err


@needs_spandrel
def test_scale_and_model_mismatches_keep_their_errors(tmp_path: Path) -> None:
    weights, _ = made("SPAN", tmp_path / "span.safetensors")
    write_rgb(tmp_path / "in.png", photo("astronaut", (24, 20)))
    base = ["images", tmp_path / "in.png", "-o", tmp_path / "out.png", "--weights", weights]
    code, err, _ = cli(*base, "-s", "4")
    assert code == 1 and error_lines(err) == [f"Error: {weights}: holds 'spandrel:SPAN' weights for x2, not x4"], err
    code, err, _ = cli(*base, "-m", "esrgan")  # a named model is not second-guessed
    assert code == 1 and error_lines(err) == [f"Error: {weights}: holds an unknown architecture, not 'esrgan'"], err


@needs_spandrel
def test_inpainting_models_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spandrel = _spandrel()
    from upscale.models.foreign import load_foreign

    conv = torch.nn.Conv2d(4, 3, 1)
    masked = spandrel.MaskedImageModelDescriptor(
        conv, conv.state_dict(), spandrel.MAIN_REGISTRY["LaMa"].architecture, purpose="Inpainting", tags=[],
        supports_half=False, supports_bfloat16=False, input_channels=3, output_channels=3,
    )  # fmt: skip
    monkeypatch.setattr(spandrel.ModelLoader, "load_from_state_dict", lambda self, sd: masked)
    with pytest.raises(WeightsError, match=r"^lama\.pth: holds a LaMa inpainting model \(image and mask in\); "):
        load_foreign(conv.state_dict(), origin="lama.pth")


@needs_spandrel
def test_jobs_record_a_stable_name_and_resume(tmp_path: Path) -> None:
    weights, _ = made("SPAN", tmp_path / "span.safetensors")
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, name in enumerate(["astronaut", "coffee"]):
        write_rgb(photos / f"p{i}.png", photo(name, (32, 24)))
    (photos / "p2.png").write_text("not an image\n")  # fails, so the job stays unfinished
    out = tmp_path / "out"
    args = ["images", photos, "-o", out, "--weights", weights, "--precision", "fp32"]
    code, err, _ = cli(*args)
    assert code == 1 and "2 upscaled, 0 skipped, 1 failed" in err, err
    (record,) = sorted(out.glob(f"{PREFIX}*"))
    settings = json.loads((record / "job.json").read_text())["settings"]
    assert settings["model"] == "spandrel:SPAN" and settings["scale"] == 2
    write_rgb(photos / "p2.png", photo("chelsea", (32, 24)))
    code, err, _ = cli(*args)  # loaded again from the file: same name and weights, so the job resumes
    assert code == 0 and "resuming the unfinished job" in err and "1 upscaled" in err, err


@needs_spandrel
def test_the_loaded_model_survives_pickling_for_cluster_workers(tmp_path: Path) -> None:
    # Cluster workers get the driver's LoadedModel through Ray's object store (cloudpickle); they need
    # spandrel installed to unpickle its network classes.
    from upscale.engine import EngineOptions, Upscaler
    from upscale.models import load_model, model_of_weights

    weights, _ = made("SwinIR", tmp_path / "swinir.safetensors")
    assert model_of_weights(weights) == "spandrel"
    loaded = load_model("spandrel", weights=weights)
    img = photo("astronaut", (24, 20))
    want = Upscaler(loaded, EngineOptions(precision="fp32", tile=0)).upscale(img)
    for dumps, loads in [(pickle.dumps, pickle.loads), *_cloudpickle()]:
        copy = loads(dumps(loaded))
        assert copy.spec == loaded.spec and copy.spec.name == "spandrel:SwinIR"
        got = Upscaler(copy, EngineOptions(precision="fp32", tile=0)).upscale(img)
        assert np.array_equal(got, want)


def _cloudpickle() -> list[tuple[Callable[[Any], bytes], Callable[[bytes], Any]]]:
    try:
        import cloudpickle
    except ImportError:
        return []
    return [(cloudpickle.dumps, cloudpickle.loads)]


@needs_spandrel
def test_fusion_leaves_foreign_networks_alone(tmp_path: Path) -> None:
    # Tracing SPAN's forward (it recomputes its weights in every call) would leave proxies in its weights.
    from upscale.fusion import fuse_for_cpu
    from upscale.models import load_model

    weights, _ = made("SPAN", tmp_path / "span.safetensors")
    loaded = load_model("spandrel", weights=weights)
    x = torch.rand(1, 3, 20, 16)
    with torch.inference_mode():
        want = loaded.module(x)
        assert fuse_for_cpu(loaded.module) is loaded.module
        assert torch.equal(loaded.module(x), want)
