"""Fold what follows a convolution into the convolution, for inference on the CPU.

A LeakyReLU, sigmoid or residual add after a convolution reads and writes the whole activation once
more. oneDNN can apply them to each output block while it is still in cache ("post-ops"), which is
what ``torch.compile`` does on the CPU, without compiling anything. Memory-bound networks gain the
most (RLFN x4: 1.11-1.14× at 320×180, 1.05× at 1280×720 on a 2-core AVX2 CPU; benchmarks/limit.py).
Eval-mode BatchNorm is folded into the convolution's weights first, so ``conv → BN → ReLU`` becomes
one call as well.

The rewrite traces each module with :mod:`torch.fx`. A module whose forward cannot be traced (it
branches on a tensor's shape) keeps its own code, and its children are rewritten instead. The caller's
module is left as it was. Every fused call checks its inputs and runs the plain layers when the fused
kernel does not apply (another device, a dtype without kernels, autograd, a broadcasting add).

A module with a true ``no_fusion`` attribute is left alone, children and all: tracing runs its forward
on proxies, and networks from other projects may change themselves there (spandrel's SPAN recomputes
its weights in every forward, and a trace leaves proxies in them); see :mod:`upscale.models.foreign`.
"""

from __future__ import annotations

import copy
import functools
import logging
import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

log = logging.getLogger(__name__)

_UNARY_MODULES: dict[type[nn.Module], Callable[[nn.Module], tuple[str, list[float]]]] = {
    nn.ReLU: lambda m: ("relu", []),
    nn.LeakyReLU: lambda m: ("leaky_relu", [m.negative_slope]),
    nn.Sigmoid: lambda m: ("sigmoid", []),
    nn.Tanh: lambda m: ("tanh", []),
}
_UNARY_FUNCTIONS: dict[Any, str] = {
    F.relu: "relu",
    torch.relu: "relu",
    torch.sigmoid: "sigmoid",
    torch.tanh: "tanh",
    F.leaky_relu: "leaky_relu",
}
_PLAIN = {"relu": nn.ReLU(), "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh()}
"""Modules for activations written as functions or methods (``torch.sigmoid(y)``, ``y.tanh()``)."""
_AFTER_ADD = {"relu"}
"""The activations oneDNN applies after a fused add."""
_ADDS = (operator.add, operator.iadd, torch.add)


def fuse_for_cpu(module: nn.Module) -> nn.Module:
    """``module`` with its convolutions and the activations or adds after them fused where possible;
    ``module`` itself when nothing could be fused."""
    if not _kernels_available():
        return module
    fused = _fuse_tree(module)
    return module if fused is None else fused


def _kernels_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


class FusedConv2d(nn.Module):
    """``unary(conv(x) + other)``, or ``unary(conv(x))`` without ``other``, in one oneDNN call."""

    def __init__(self, conv: nn.Conv2d, unary: nn.Module | None, attr: str, scalars: list[float], add: bool):
        super().__init__()
        self.conv = conv
        self.unary = unary
        """The activation module, for the plain path."""
        self.attr = attr
        self.scalars = scalars
        self.add = add

    def extra_repr(self) -> str:
        return f"add={self.add}, unary={self.attr!r}"

    def forward(self, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        if self._applies(x, other):
            c = self.conv
            args = (c.weight, c.bias, c.padding, c.stride, c.dilation, c.groups)
            op = torch.ops.mkldnn._convolution_pointwise
            if other is None:
                return op(x, *args, self.attr, self.scalars, "")
            unary = None if self.attr == "none" else self.attr
            return op.binary(x, other, *args, "add", None, unary, self.scalars, "")
        y = self.conv(x)
        if other is not None:
            y = y + other
        return y if self.unary is None else self.unary(y)

    def _applies(self, x: torch.Tensor, other: torch.Tensor | None) -> bool:
        w = self.conv.weight
        if x.device.type != "cpu" or x.dim() != 4 or x.dtype not in (torch.float32, torch.bfloat16):
            return False
        if x.dtype != w.dtype or (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)):
            return False
        if x.dtype == torch.bfloat16 and not _native_bf16():
            return False  # oneDNN's fused bf16 kernels need AVX512-BF16, AMX or AVX-NE-CONVERT
        if other is None:
            return True
        if other.dtype != x.dtype or (torch.is_grad_enabled() and other.requires_grad):
            return False
        if self.attr != "none" and x.dtype != torch.float32 and not self._binary_kernel(x):
            return False  # torch would run conv, then ATen's add_relu_, which has no bf16 kernel
        n, _, h, wd = x.shape
        k, p, s, d = self.conv.kernel_size, self.conv.padding, self.conv.stride, self.conv.dilation
        out_h = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
        out_w = (wd + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
        # oneDNN adds ``other`` element by element in the output's layout: no broadcasting.
        fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        return tuple(other.shape) == (n, w.shape[0], out_h, out_w) and other.is_contiguous(memory_format=fmt)

    def _binary_kernel(self, x: torch.Tensor) -> bool:
        """Whether torch gives the add to oneDNN rather than doing it itself: one group, and the input or
        the weights in channels_last (plainly, not a layout that is both, such as a single channel)."""

        def channels_last(t: torch.Tensor) -> bool:
            return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()

        return self.conv.groups == 1 and (channels_last(x) or channels_last(self.conv.weight))


@functools.cache
def _native_bf16() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _fuse_tree(module: nn.Module) -> nn.Module | None:
    """The rewritten module, or None when nothing in it was fused."""
    if getattr(module, "no_fusion", False) or not any(True for _ in module.children()):
        return None
    try:
        graph_module = fx.symbolic_trace(module)
    except Exception as e:  # noqa: BLE001 - branches on tensors, untraceable Python: fuse the children
        log.debug("fusion: %s not traced (%s); fusing inside its children", type(module).__name__, e)
    else:
        return graph_module if _fuse_graph(graph_module) else None
    changed = {name: new for name, child in module.named_children() if (new := _fuse_tree(child)) is not None}
    if not changed:
        return None
    new = copy.copy(module)
    new._modules = {**module._modules, **changed}
    return new


def _fuse_graph(gm: fx.GraphModule) -> int:
    """Rewrite ``gm`` in place; the number of fused calls."""
    modules = dict(gm.named_modules())
    fused = 0
    for node in list(gm.graph.nodes):
        conv = modules.get(node.target) if node.op == "call_module" else None
        if type(conv) is not nn.Conv2d or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            continue
        if len(node.args) != 1 or node.kwargs:
            continue
        last, other, unary = node, None, None
        bn = _only_user(last)
        if bn is not None and bn.op == "call_module" and _foldable_bn(modules.get(bn.target)):
            conv = fuse_conv_bn_eval(conv, modules[bn.target])
            last = bn
        nxt = _only_user(last)
        if nxt is not None and nxt.op == "call_function" and nxt.target in _ADDS and not nxt.kwargs:
            operands = [a for a in nxt.args if a is not last]
            tensor_operand = len(nxt.args) == 2 and len(operands) == 1 and isinstance(operands[0], fx.Node)
            # ``a += conv(x)`` writes into ``a``; only ``conv(x) += a`` writes into the conv's own output.
            if tensor_operand and not (nxt.target is operator.iadd and nxt.args[0] is not last):
                other, last = operands[0], nxt
                nxt = _only_user(last)
        act = None if nxt is None else _unary(nxt, modules)
        if act is not None and (other is None or act[0] in _AFTER_ADD):
            unary = act
            last = nxt
        if last is node:
            continue
        attr, scalars, act_module = unary or ("none", [], None)
        name = f"fused_{fused}"
        gm.add_submodule(name, FusedConv2d(conv, act_module, attr, scalars, other is not None))
        with gm.graph.inserting_after(last):
            new = gm.graph.call_module(name, (node.args[0],) if other is None else (node.args[0], other))
        last.replace_all_uses_with(new)
        for dead in _chain(node, last):
            gm.graph.erase_node(dead)
        fused += 1
    if fused:
        gm.graph.lint()
        gm.delete_all_unused_submodules()
        gm.recompile()
    return fused


def _only_user(node: fx.Node) -> fx.Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def _chain(first: fx.Node, last: fx.Node) -> list[fx.Node]:
    """The nodes from ``last`` back to ``first`` along single-user links, last first (erase order)."""
    nodes, node = [], first
    while node is not last:
        nodes.append(node)
        node = next(iter(node.users))
    nodes.append(last)
    return nodes[::-1]


def _foldable_bn(m: nn.Module | None) -> bool:
    return type(m) is nn.BatchNorm2d and not m.training and m.track_running_stats and m.running_mean is not None


def _unary(node: fx.Node, modules: dict[str, nn.Module]) -> tuple[str, list[float], nn.Module] | None:
    """The oneDNN name, scalars and a plain module of an activation node (a module, a function or a
    tensor method), or None."""
    if node.op == "call_module":
        m = modules.get(node.target)
        describe = _UNARY_MODULES.get(type(m))
        return (*describe(m), m) if describe else None
    if node.op == "call_method" and node.target in _PLAIN and len(node.args) == 1 and not node.kwargs:
        return node.target, [], _PLAIN[node.target]
    if node.op != "call_function" or node.target not in _UNARY_FUNCTIONS:
        return None
    if node.target is F.leaky_relu:
        named = dict(zip(("negative_slope", "inplace"), node.args[1:], strict=False), **node.kwargs)
        slope = named.pop("negative_slope", 0.01)
        named.pop("inplace", None)
        if named or len(node.args) > 3 or not isinstance(slope, float):
            return None
        return "leaky_relu", [slope], nn.LeakyReLU(slope)
    if len(node.args) != 1 or set(node.kwargs) - {"inplace"}:
        return None
    name = _UNARY_FUNCTIONS[node.target]
    return name, [], _PLAIN[name]
