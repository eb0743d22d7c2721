"""The bundled weights travel with every kind of install: a built wheel in a fresh virtual environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_OUTSIDE = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONSAFEPATH", "PYTHONPLATLIBDIR"}
_OUTSIDE |= {"PYTHONEXECUTABLE", "PIP_USER", "PIP_TARGET", "PIP_PREFIX", "PIP_ROOT"}
"""What would show the fresh environment something other than what it installed (a source checkout on
PYTHONPATH, another prefix), or install the wheel elsewhere."""
FRESH = {k: v for k, v in os.environ.items() if k not in _OUTSIDE}

PROBE = """
import json, sys
import upscale
from upscale.models import default_model_name
from upscale.models.bundled import bundled_weights, weights_dir
print(json.dumps({
    "package": upscale.__file__,
    "weights_dir": str(weights_dir()),
    "bundled": sorted((b.path.name, b.model, b.scale) for b in bundled_weights()),
    "default": default_model_name(),
}))
"""


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_finds_the_bundled_weights(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        env=FRESH,
    )
    wheel = next(wheels.glob("upscale-*.whl"))
    env_dir = tmp_path / "venv"
    # The venv sees this interpreter's packages (torch, ...) but gets its own copy of upscale.
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
        env=FRESH,
    )
    probe = [str(python), "-c", PROBE]
    out = subprocess.run(probe, check=True, capture_output=True, text=True, cwd=tmp_path, env=FRESH)
    found = json.loads(out.stdout)
    assert found["package"].startswith(str(env_dir)), found
    assert found["weights_dir"].startswith(str(env_dir)), found
    manifest = json.loads((ROOT / "weights" / "manifest.json").read_text())
    expected = sorted((e["file"], e["model"], e["scale"]) for e in manifest["weights"])
    assert [tuple(b) for b in found["bundled"]] == expected
    if expected:
        assert found["default"] != "bicubic"
