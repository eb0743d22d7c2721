"""How much memory the process can still take, and keeping freed activation memory in the process
instead of handing it back to the OS.

glibc serves every allocation above 128 KiB-32 MiB (its dynamic mmap threshold) with a fresh ``mmap``
and unmaps it on free, and trims the heap top whenever more than the trim threshold is free. A network's
activations are freed and allocated again at the same sizes on every frame, so each convolution pays
page faults to zero memory it just returned. Turning both off once at start-up keeps the pages mapped;
the process then holds its peak working set, which it needs again on the next frame anyway.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("upscale")

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_ENV = "UPSCALE_MALLOC"
"""``UPSCALE_MALLOC=default`` leaves glibc's settings alone."""


def available_memory() -> int:
    """Bytes of RAM this process can still take: the kernel's MemAvailable, within a cgroup's limit and
    the address space left under ``ulimit -v``."""
    avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    with contextlib.suppress(OSError, ValueError):
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            avail = min(avail, int(limit) - int((cgroup / "memory.current").read_text()))
    with contextlib.suppress(OSError, ValueError, ImportError):
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmSize:"):
                    avail = min(avail, soft - int(line.split()[1]) * 1024)
    return max(avail, 0)


def keep_freed_memory() -> bool:
    """Apply the settings on glibc (Linux); True where they were applied.

    Skipped when ``UPSCALE_MALLOC=default`` or when the user tunes malloc already through glibc's own
    ``MALLOC_MMAP_MAX_``/``MALLOC_TRIM_THRESHOLD_``/``GLIBC_TUNABLES`` variables.
    """
    if not sys.platform.startswith("linux") or os.environ.get(_ENV, "").lower() == "default":
        return False
    if any(k in os.environ for k in ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")):
        return False
    try:  # the process's own symbols hold libc's: no library search (which may run ldconfig) at start-up
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    log.debug("malloc: keep freed memory %s", "on" if ok else "refused")
    return ok
