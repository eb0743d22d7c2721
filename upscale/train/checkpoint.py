"""Run checkpoints and final weights, written so that a crash or a full disk never leaves a broken file.

A checkpoint holds everything an exact resume needs: model, optimisers, EMA, extra networks, the
torch RNG state and the iteration (data order is a function of seed and iteration). It is a plain
dict of tensors and numbers, read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save
from torch import nn

from ..errors import UpscaleError
from ..io.files import temp_name

CHECKPOINT = "checkpoint.pt"
FINAL = "final.safetensors"


class TrainingError(UpscaleError):
    """Training cannot go on (diverged, unwritable run folder, incompatible resume)."""


def _write(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder, fsync, then rename over ``path``.

    The bytes are serialised before the file is opened, so a full disk surfaces as one ``OSError``
    here rather than as an error deep inside a serialiser."""
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise TrainingError(
            f"{path}: could not be written ({exc.strerror or exc}); the previous file, if any, is kept"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    _write(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TrainingError(f"{path}: no checkpoint to resume from")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a broken checkpoint
        raise TrainingError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None


def plain_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """Contiguous float32 CPU copies of the module's tensors (safetensors wants plain, unshared storage)."""
    return {
        k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu().contiguous().clone()
        for k, v in module.state_dict().items()
    }


def save_weights(path: Path, module: nn.Module, metadata: dict[str, str]) -> None:
    """Weights as safetensors with ``metadata`` (model, scale, recipe, iterations), which ``--weights`` reads."""
    _write(path, save(plain_state_dict(module), metadata=metadata))
