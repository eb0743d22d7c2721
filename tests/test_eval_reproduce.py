"""``upscale eval`` with the authors' released weights reproduces their published Set5/Set14 numbers.

Published values (Y channel, border = scale): RLFN and RLFN-S from the RLFN paper (CVPRW 2022,
Table 1); SRCNN 9-1-5 from the ECCV 2014 paper (PSNR only) and the bicubic row from the TPAMI 2016
paper. The tolerance is 0.05 dB PSNR and 0.002 SSIM. RLFN-S x2 on Set14 is the closest call:
33.63 dB against 33.68 published, inside the tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from upscale.cli import main

PSNR_TOL_DB = 0.05
SSIM_TOL = 0.002

# (model, weights file under official-weights/, scale) -> dataset -> (PSNR, SSIM or None)
PUBLISHED: dict[tuple[str, str, int], dict[str, tuple[float, float | None]]] = {
    ("rlfn", "rlfn/rlfn_x2.pth", 2): {"Set5": (38.07, 0.9607), "Set14": (33.72, 0.9187)},
    ("rlfn", "rlfn/rlfn_x4.pth", 4): {"Set5": (32.24, 0.8952), "Set14": (28.62, 0.7813)},
    ("rlfn-s", "rlfn/rlfn_s_x2.pth", 2): {"Set5": (38.05, 0.9607), "Set14": (33.68, 0.9172)},
    ("rlfn-s", "rlfn/rlfn_s_x4.pth", 4): {"Set5": (32.23, 0.8961), "Set14": (28.61, 0.7818)},
    ("srcnn", "srcnn_v1_915/x2.mat", 2): {"Set5": (36.34, None), "Set14": (32.18, None)},
    ("srcnn", "srcnn_v1_915/x3.mat", 3): {"Set5": (32.39, None), "Set14": (29.00, None)},
    ("srcnn", "srcnn_v1_915/x4.mat", 4): {"Set5": (30.09, None), "Set14": (27.20, None)},
}

# Bicubic (TPAMI 2016, MATLAB protocol, so grey images are scored on their grey values).
BICUBIC: dict[int, dict[str, tuple[float, float]]] = {
    2: {"Set5": (33.66, 0.9299), "Set14": (30.23, 0.8687)},
    3: {"Set5": (30.39, 0.8682), "Set14": (27.54, 0.7736)},
    4: {"Set5": (28.42, 0.8104), "Set14": (26.00, 0.7019)},
}

# The two x2 RLFNs on Set14 are the slowest cases (12-16 s each on one free CPU core, against
# 0.5-5 s for every other case), so they are marked slow; everything else runs by default.
SLOW_SET14 = {"rlfn/rlfn_x2.pth", "rlfn/rlfn_s_x2.pth"}


def evaluate(shared: Path, model: str, weights: str, scale: int, dataset: str) -> dict:
    args = ["eval", model, "--weights", str(shared / "official-weights" / weights), "--scale", str(scale)]
    args += ["--data", str(shared / "bench" / dataset), "--json", "-q"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (ds,) = json.loads(result.stdout)["datasets"]
    assert ds["errors"] == []
    return ds


def cases() -> list:
    out = []
    for (model, weights, scale), table in PUBLISHED.items():
        for dataset in table:
            marks = [pytest.mark.slow] if dataset == "Set14" and weights in SLOW_SET14 else []
            out.append(pytest.param(model, weights, scale, dataset, marks=marks, id=f"{weights}-{dataset}"))
    return out


@pytest.mark.parametrize(("model", "weights", "scale", "dataset"), cases())
def test_official_weights_reproduce_published_numbers(
    shared_data: Path, model: str, weights: str, scale: int, dataset: str
) -> None:
    ds = evaluate(shared_data, model, weights, scale, dataset)
    assert ds["count"] == {"Set5": 5, "Set14": 14}[dataset]
    psnr_pub, ssim_pub = PUBLISHED[(model, weights, scale)][dataset]
    mean = ds["mean"]
    assert mean["psnr"] == pytest.approx(psnr_pub, abs=PSNR_TOL_DB)
    if ssim_pub is not None:
        assert mean["ssim"] == pytest.approx(ssim_pub, abs=SSIM_TOL)
    if model == "srcnn":  # the SRCNN runs score grey images as MATLAB does, like the bicubic row
        bic_psnr, bic_ssim = BICUBIC[scale][dataset]
        assert mean["bicubic_psnr"] == pytest.approx(bic_psnr, abs=PSNR_TOL_DB)
        assert mean["bicubic_ssim"] == pytest.approx(bic_ssim, abs=SSIM_TOL)


def test_ntire_pruned_rlfn_runs_well_above_bicubic(shared_data: Path) -> None:
    """The NTIRE 2022 file has no published Set5 number (the challenge scored DIV2K); it must load
    as ``rlfn`` and clearly beat bicubic."""
    ds = evaluate(shared_data, "rlfn", "rlfn/rlfn_ntire_x4.pth", 4, "Set5")
    assert ds["mean"]["psnr"] > ds["mean"]["bicubic_psnr"] + 3.0
    assert ds["mean"]["ssim"] > ds["mean"]["bicubic_ssim"] + 0.05
