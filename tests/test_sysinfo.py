"""What the package says of the machine it runs on."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest
import torch

from upscale.sysinfo import cpu_flags, cpu_name, machine


def test_machine_names_the_cpu_its_threads_and_torch() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert machine("cpu") == f"{cpu_name()}, 1 thread, torch {torch.__version__}"
        torch.set_num_threads(2)
        assert machine() == f"{cpu_name()}, 2 threads, torch {torch.__version__}"
    finally:
        torch.set_num_threads(before)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file() and "model name" in cpuinfo.read_text():
        line = next(x for x in cpuinfo.read_text().splitlines() if x.startswith("model name"))
        assert cpu_name() == line.partition(":")[2].strip()
    assert cpu_name()


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.machine() != "x86_64", reason="x86-64 Linux")
def test_cpu_flags_are_the_kernels_list() -> None:
    flags = cpu_flags()
    assert {"sse2", "fpu"} <= flags  # every x86-64 CPU has them
    assert ("avx512f" in flags) == (" avx512f" in Path("/proc/cpuinfo").read_text())
