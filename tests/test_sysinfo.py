"""What the package says of the machine it runs on."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest
import torch

from upscale.sysinfo import cpu_flags, cpu_name, machine


def test_machine_names_the_cpu_its_threads_and_torch() -> None:
    threads = torch.get_num_threads()
    assert machine("cpu") == f"{cpu_name()}, {threads} thread{'s' if threads != 1 else ''}, torch {torch.__version__}"
    assert cpu_name()


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.machine() != "x86_64", reason="x86-64 Linux")
def test_cpu_flags_are_the_kernels_list() -> None:
    flags = cpu_flags()
    assert {"sse2", "fpu"} <= flags  # every x86-64 CPU has them
    assert ("avx512f" in flags) == (" avx512f" in Path("/proc/cpuinfo").read_text())
