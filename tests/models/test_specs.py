"""What every registered spec declares without building its network: the declared parameter counts
match the built networks, and describing the models imports no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from upscale.models import REGISTRY, build_model


@pytest.mark.parametrize("name", REGISTRY.names())
def test_declared_params_match_the_built_network(name: str) -> None:
    spec = REGISTRY.get(name)
    assert set(spec.params) == set(spec.scales), "declare a count for each published scale"
    for scale in spec.scales:
        assert build_model(spec, scale).num_params == spec.params[scale], f"{name} x{scale}"


def test_specs_are_described_without_torch() -> None:
    """Reading every spec's description (names, scales, parameter counts) imports no torch; building a
    network does."""
    code = (
        "import sys\n"
        "from upscale.models import REGISTRY\n"
        "assert [s.params[s.default_scale] for s in REGISTRY]\n"
        "assert 'torch' not in sys.modules, 'torch imported by the descriptions'\n"
        "REGISTRY.get('rlfn').network\n"
        "assert 'torch' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
