"""Start-up time of the commands that should answer at once: ``upscale --help``, ``upscale models``,
``upscale weights list``, beside a bare ``python -c pass``; and whether each one imported torch.

Each command runs in a new process, in turns, ``--rounds`` times; the median wall time is printed.

    python benchmarks/startup.py --rounds 5
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "upscale --help": [sys.executable, "-m", "upscale", "--help"],
    "upscale models": [sys.executable, "-m", "upscale", "models"],
    "upscale weights list": [sys.executable, "-m", "upscale", "weights", "list"],
}
TARGET_S = 0.5


def loads_torch(argv: list[str]) -> bool:
    """Whether the command imports torch (read from ``-X importtime``)."""
    run = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], capture_output=True, text=True, check=False)
    return any(line.split("|")[-1].strip() == "torch" for line in run.stderr.splitlines())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    env = {**os.environ, "UPSCALE_OFFLINE": "1"}
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, argv in COMMANDS.items():
            t0 = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
            times[name].append(time.perf_counter() - t0)
    print(f"cpu: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores; {args.rounds} rounds")
    for name, argv in COMMANDS.items():
        median = statistics.median(times[name])
        torch_note = "" if name.startswith("python") else ("imports torch" if loads_torch(argv) else "no torch")
        target = "" if name.startswith("python") else ("ok" if median < TARGET_S else f"over {TARGET_S} s")
        print(f"  {name:22s} {median:6.3f} s   {torch_note:14s} {target}")


if __name__ == "__main__":
    main()
