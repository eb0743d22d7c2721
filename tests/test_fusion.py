"""Convolutions fused with what follows them (``upscale.fusion``) compute what the plain layers do."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.conftest import photo, small_model
from upscale.engine import EngineOptions, Upscaler
from upscale.fusion import FusedConv2d, fuse_for_cpu
from upscale.models import REGISTRY

# Networks with a convolution followed by something oneDNN can fold into it (compact follows each with a
# per-channel PReLU, which it cannot).
_FUSABLE = [s.name for s in REGISTRY if s.name not in ("bicubic", "srcnn", "compact")]


def _fused_count(module: nn.Module) -> int:
    return sum(isinstance(m, FusedConv2d) for m in module.modules())


def _randomise_batchnorm(module: nn.Module) -> None:
    """Running statistics far from the identity, so that folding them into the weights shows."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)


_DTYPES = [torch.float32, torch.bfloat16]
"""fp32, and bf16: what ``--precision auto`` runs on CPUs with native bf16 kernels, where the fused calls
take oneDNN's bf16 kernels."""
_STEP = {torch.float32: 1e-5, torch.bfloat16: 2**-7}
"""Relative error allowed a fused call: in bf16 one step (two roundings of half a step each)."""
_NETWORK_STEP = {torch.float32: 1e-5, torch.bfloat16: 2**-5}
"""Fused against plain through a whole network, relative to its largest output: in bf16 the plain layers
round after each of them, the fused calls once, and the differences add up over the layers."""


def _native_or_skip(dtype: torch.dtype) -> None:
    if dtype is torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("no native bf16 kernels on this CPU: fused calls in bf16 run the plain layers")


def _each_call_computes_its_layers(fused: nn.Module, x: torch.Tensor) -> None:
    """Each fused call in a run of ``fused`` on ``x``, repeated on its own inputs, against its plain layers
    computed in fp32 from the same (bf16) weights and inputs. It may differ from them by rounding: a step of
    the dtype relative to the size of what is summed (the terms of the convolution, the added tensor and
    the result). A wrong activation, slope, bias or add is many steps off."""
    calls: list[tuple[FusedConv2d, tuple[torch.Tensor, ...]]] = []

    def keep(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        calls.append((module, tuple(a.clone() for a in args)))  # before anything writes into them

    hooks = [m.register_forward_pre_hook(keep) for m in fused.modules() if isinstance(m, FusedConv2d)]
    try:
        fused(x)
    finally:
        for h in hooks:
            h.remove()
    assert calls
    assert any(m._applies(a[0], a[1] if len(a) > 1 else None) for m, a in calls)  # oneDNN's kernels ran
    for m, args in calls:
        inp, other = args[0], (args[1] if len(args) > 1 else None)
        got = m(inp, other)
        assert got.dtype == x.dtype
        c = m.conv
        bias = None if c.bias is None else c.bias.float()
        conv = F.conv2d(inp.float(), c.weight.float(), bias, c.stride, c.padding, c.dilation, c.groups)
        size = F.conv2d(inp.float().abs(), c.weight.float().abs(), None if bias is None else bias.abs(), c.stride,
                        c.padding, c.dilation, c.groups)  # fmt: skip
        if other is not None:
            conv = conv + other.float()
            size = size + other.float().abs()
        expected = conv if m.unary is None else m.unary(conv)
        size = size + expected.abs()
        off = float(((got.float() - expected).abs() - _STEP[x.dtype] * size).max())
        assert off <= 1e-6 * float(size.max()), (m, off)


@pytest.mark.parametrize("dtype", _DTYPES, ids=["fp32", "bf16"])
@pytest.mark.parametrize("name", _FUSABLE)
@torch.inference_mode()
def test_every_fusable_network_gives_its_plain_output(name: str, dtype: torch.dtype) -> None:
    _native_or_skip(dtype)
    loaded = small_model(name)
    net = loaded.module.to(memory_format=torch.channels_last)
    _randomise_batchnorm(net)
    net = net.to(dtype)  # as the engine does: the dtype first, then the fusion
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fused = fuse_for_cpu(net)
    assert _fused_count(fused) > 0, f"nothing in {name} was fused"
    channels = 1 if loaded.spec.colour == "y" else 3
    side = 20 if loaded.spec.input_kind == "lr" else 20 * loaded.scale
    x = torch.rand(2, channels, side, side + 7).contiguous(memory_format=torch.channels_last)
    x = (x * loaded.spec.value_range).to(dtype)
    expected = net(x)
    got = fused(x)
    assert got.shape == expected.shape and got.dtype == dtype
    tolerance = _NETWORK_STEP[dtype] * max(1.0, float(expected.abs().max()))
    assert float((got.float() - expected.float()).abs().max()) <= tolerance
    _each_call_computes_its_layers(fused, x)
    # The caller's network is untouched: same modules, same weights.
    assert _fused_count(net) == 0
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_network_without_anything_to_fold_is_returned_as_it_is() -> None:
    net = small_model("srcnn").module  # replicate-padded convolutions: oneDNN pads with zeros only
    assert fuse_for_cpu(net) is net


class _Shapes(nn.Module):
    """Each pattern the rewrite knows, and a few it must leave alone."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8).eval()
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.c = nn.Conv2d(8, 8, 1)
        self.d = nn.Conv2d(8, 8, 3, padding=1)
        self.e = nn.Conv2d(8, 8, 3, stride=2)
        self.f = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn(self.a(x)))  # conv -> BN -> relu
        y = F.leaky_relu(self.b(y), 0.1) + y  # conv -> leaky_relu (positional slope), then an add
        z = torch.relu(y + self.c(y))  # add with the conv second, then relu
        z = torch.sigmoid(z + self.c(z))  # oneDNN has no sigmoid after an add: the add alone
        t = self.d(z)
        t += z  # in place into the conv's own output
        u = self.e(t)  # the stride-2 output is used twice: nothing to fold
        v = self.f(t)
        v = v + u.mean()  # broadcasting add: left to the plain path at run time
        return v * 2 + F.interpolate(u, size=v.shape[-2:]) + self.f(t).tanh()


@pytest.mark.parametrize("dtype", _DTYPES, ids=["fp32", "bf16"])
@torch.inference_mode()
def test_each_pattern_is_folded_and_a_broadcasting_add_runs_plain(dtype: torch.dtype) -> None:
    _native_or_skip(dtype)
    torch.manual_seed(0)
    net = _Shapes().eval()
    _randomise_batchnorm(net)
    net = net.to(dtype)
    fused = fuse_for_cpu(net)
    kinds = sorted((m.add, m.attr) for m in fused.modules() if isinstance(m, FusedConv2d))
    # a: BN + relu; b: leaky_relu; c: add + relu, then add; d: add (in place); f: add, then tanh.
    assert kinds == [
        (False, "leaky_relu"),
        (False, "relu"),
        (False, "tanh"),
        (True, "none"),
        (True, "none"),
        (True, "none"),
        (True, "relu"),
    ]
    step = _NETWORK_STEP[dtype]
    for fmt in (torch.contiguous_format, torch.channels_last):
        x = torch.rand(2, 4, 17, 23).to(dtype).contiguous(memory_format=fmt)
        got, expected = fused(x), net(x)
        assert got.dtype == dtype
        assert float(((got.float() - expected.float()).abs() - step * expected.float().abs()).max()) <= step
        _each_call_computes_its_layers(fused, x)


class _GroupedResidual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.g = nn.Conv2d(8, 8, 3, padding=1, groups=4)
        self.h = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.h(torch.relu(self.g(x) + x)) + x)


@pytest.mark.parametrize("dtype", _DTYPES, ids=["fp32", "bf16"])
@torch.inference_mode()
def test_an_add_and_relu_that_onednn_does_not_take_runs_plain(dtype: torch.dtype) -> None:
    """A grouped convolution, or one on a plain (NCHW) input with plain weights: torch does not fuse the
    add, and its own add-then-relu has no bf16 kernel, so the plain layers run."""
    _native_or_skip(dtype)
    torch.manual_seed(0)
    net = _GroupedResidual().eval().to(dtype)
    for layout in (torch.contiguous_format, torch.channels_last):
        net = net.to(memory_format=layout)
        fused = fuse_for_cpu(net)
        assert sorted((m.add, m.attr) for m in fused.modules() if isinstance(m, FusedConv2d)) == [(True, "relu")] * 2
        for fmt in (torch.contiguous_format, torch.channels_last):
            x = torch.rand(2, 8, 9, 11).to(dtype).contiguous(memory_format=fmt)
            got, expected = fused(x).float(), net(x).float()
            step = _NETWORK_STEP[dtype]
            assert float(((got - expected).abs() - step * expected.abs()).max()) <= step


def test_with_autograd_the_plain_layers_run_and_gradients_match() -> None:
    torch.manual_seed(0)
    net = _Shapes().eval()
    fused = fuse_for_cpu(net)
    x = torch.rand(1, 4, 16, 16, requires_grad=True)
    (g_plain,) = torch.autograd.grad(net(x).sum(), x)
    (g_fused,) = torch.autograd.grad(fused(x).sum(), x)
    assert torch.allclose(g_plain, g_fused, atol=1e-5)


@pytest.mark.parametrize("name", ["rlfn", "esrgan", "srresnet"])
def test_the_engine_fuses_on_the_cpu_and_the_images_stay_the_same(name: str) -> None:
    model = small_model(name)
    img = photo("coffee", (56, 40))
    fused = Upscaler(model, EngineOptions(device="cpu", precision="fp32", tile=24))
    plain = Upscaler(model, EngineOptions(device="cpu", precision="fp32", tile=24, fuse=False))
    assert _fused_count(fused.module) > 0 and _fused_count(plain.module) == 0
    assert _fused_count(Upscaler(model, EngineOptions(device="cpu", compile=True)).module) == 0
    assert np.abs(fused.upscale(img).astype(int) - plain.upscale(img)).max() <= 1
