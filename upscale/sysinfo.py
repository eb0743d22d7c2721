"""What machine this is, in words and in CPU flags, for records (training metadata) and for choices
that depend on the CPU (video encoding). Reads ``/proc/cpuinfo`` where there is one."""

from __future__ import annotations

import functools
import platform
from pathlib import Path


@functools.cache
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_name() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """The first CPU's feature flags (``avx512f``, ``avx512_bf16``, ...); empty where unknown."""
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def machine(device: str = "cpu") -> str:
    """``AMD EPYC, 2 threads, torch 2.13.0``; the GPU's name on a CUDA device."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        where = torch.cuda.get_device_name(torch.device(device))
    else:
        threads = torch.get_num_threads()
        where = f"{cpu_name()}, {threads} thread{'s' if threads != 1 else ''}"
    return f"{where}, torch {torch.__version__}"
