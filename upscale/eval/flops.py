"""Counting a network's multiply-accumulates (MACs) for one input size.

Convolutions, transposed convolutions and linear layers are counted with forward hooks; element-wise
work, pooling, interpolation and activations are not, which is the convention of SR papers and the
NTIRE efficiency reports (their "FLOPs" are these MACs). The pass runs on the ``meta`` device, so
counting a 4K frame costs no memory and no time; one FLOP here is half a MAC's work, i.e.
``flops = 2 * macs``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["activation_bytes", "count_macs"]


def _conv_macs(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    kernel = math.prod(module.kernel_size)  # type: ignore[arg-type]
    if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        # every input element is spread over kernel × out_channels/groups outputs
        return inputs[0].numel() * kernel * module.out_channels // module.groups  # type: ignore[operator]
    return output.numel() * kernel * module.in_channels // module.groups  # type: ignore[operator]


_COUNTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)


def _hooked_pass(
    module: nn.Module,
    input_shape: tuple[int, ...],
    hook: Callable[..., None],
    watched: Callable[[nn.Module], bool],
    device: str,
) -> None:
    """Run a throw-away float32 copy of ``module`` on zeros of ``input_shape`` on ``device``, with ``hook``
    as a forward hook on the submodules ``watched`` accepts."""
    clone = copy.deepcopy(module).to(device=device, dtype=torch.float32).eval()
    handles = [m.register_forward_hook(hook) for m in clone.modules() if watched(m)]
    try:
        with torch.inference_mode():
            clone(torch.zeros(input_shape, device=device))
    finally:
        for h in handles:
            h.remove()


def count_macs(module: nn.Module, input_shape: tuple[int, ...], *, on_meta: bool = True) -> int:
    """MACs of ``module(x)`` for an ``x`` of ``input_shape`` (N×C×H×W), counted on a throw-away copy.

    ``on_meta`` runs the copy on the ``meta`` device (shapes only); where an operation has no meta
    kernel the count falls back to a real float32 pass on the CPU.
    """
    total = 0

    def hook(mod: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += _conv_macs(mod, inputs, output)

    def run(device: str) -> int:
        nonlocal total
        total = 0
        _hooked_pass(module, input_shape, hook, lambda m: isinstance(m, _COUNTED), device)
        return total

    if on_meta:
        try:
            return run("meta")
        except (NotImplementedError, RuntimeError):
            pass
    return run("cpu")


def activation_bytes(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Bytes of float32 activations live at the most demanding layer of ``module(x)`` for an ``x`` of
    ``input_shape``: that layer's input and output plus the largest activation of the pass, which a skip
    connection may keep alive. Shapes only (``meta`` device; a real CPU pass for a network the meta device
    cannot run); a lower bound on what a real pass holds.
    """
    widest = 0
    largest = 0

    def hook(mod: nn.Module, inputs: tuple[torch.Tensor, ...], output: object) -> None:
        nonlocal widest, largest
        outs = [output] if isinstance(output, torch.Tensor) else []
        sizes = [t.numel() for t in (*inputs, *outs) if isinstance(t, torch.Tensor)]
        widest = max(widest, sum(sizes))
        largest = max(largest, *sizes, 0)

    try:
        _hooked_pass(module, input_shape, hook, lambda m: not list(m.children()), "meta")
    except (NotImplementedError, RuntimeError):  # no meta kernel, or a network that rewrites its weights
        widest = largest = 0  # (spandrel's SPAN) where inference mode forbids it on meta: a real pass
        _hooked_pass(module, input_shape, hook, lambda m: not list(m.children()), "cpu")
    return 4 * (widest + largest)
