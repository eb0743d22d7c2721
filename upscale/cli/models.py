"""``upscale models``: the registered models, and the weights each runs with when named alone."""

from __future__ import annotations

import json
from typing import Any

import click

from .. import hub
from ..models import REGISTRY, ModelSpec, WeightsChoice, default_model_name, default_weights
from ..models.bundled import BundledWeights, bundled_weights


def weights_by_scale(spec: ModelSpec) -> list[WeightsChoice]:
    """The default weights at each scale that has some: the bare name's choice first, then by scale, largest first."""
    scales = set(spec.scales) | {b.scale for b in bundled_weights() if b.model == spec.name}
    choices = [c for s in sorted(scales, reverse=True) if (c := default_weights(spec, s)) is not None]
    first = default_weights(spec, None)
    return sorted(choices, key=lambda c: c != first)  # stable: the rest keep their order


def weights_text(spec: ModelSpec, choices: list[WeightsChoice]) -> str:
    """``bundled x4 (Set5 31.02 dB), x2 (Set5 37.10 dB); official: rlfn-x2 (x2)``, ``n/a`` or ``-``; bundled
    files that an official checkpoint takes precedence over are listed as the offline fallback."""
    if not spec.needs_weights:
        return "n/a"
    chosen = [c.bundled for c in choices if c.bundled is not None]
    fallback = [b for b in bundled_weights() if b.model == spec.name and b not in chosen]
    official = [f"{c.name} (x{c.scale})" for c in choices if c.source == "official"]
    parts = (["bundled " + _scores(chosen)] if chosen else []) + (
        ["official: " + ", ".join(official)] if official else []
    )
    if fallback:
        parts.append("offline: bundled " + _scores(sorted(fallback, key=lambda b: -b.scale)))
    return "; ".join(parts) or "-"


def _scores(files: list[BundledWeights]) -> str:
    return ", ".join(f"x{b.scale}" + (f" (Set5 {b.set5_psnr:.2f} dB)" if b.set5_psnr > 0 else "") for b in files)


def model_rows() -> list[dict[str, object]]:
    bundled: dict[str, list[str]] = {}
    for b in bundled_weights():
        bundled.setdefault(b.model, []).append(f"x{b.scale}")
    rows = []
    for spec in REGISTRY:
        scales = ", ".join(f"x{s}" for s in spec.scales) + ("+" if spec.any_scale else "")
        choices = weights_by_scale(spec)
        default = default_weights(spec, None)
        rows.append(
            {
                "name": spec.name,
                "scales": scales,
                "colour": spec.colour.upper() if spec.colour == "y" else "RGB",
                "input": "LR" if spec.input_kind == "lr" else "bicubic-up",
                "params": spec.params[spec.default_scale],  # declared, so no network is built
                "params_at": f"x{spec.default_scale}",
                "bundled": ", ".join(sorted(bundled.get(spec.name, []))) or ("-" if spec.needs_weights else "n/a"),
                "weights": weights_text(spec, choices),
                "default_weights": _choice_json(default) if default is not None else None,
                "weights_by_scale": [_choice_json(c) for c in choices],
                "title": spec.title,
                "fits": spec.fits,
            }
        )
    return rows


def _choice_json(choice: WeightsChoice) -> dict[str, Any]:
    return {
        "source": choice.source,
        "name": choice.name,
        "scale": choice.scale,
        "set5_psnr": choice.set5_psnr,
        "cached": choice.cached,
    }


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models(as_json: bool) -> None:
    """List the models: scales, colour space, input, parameters, the weights a bare name runs with.

    The weights column says what '-m NAME' without --weights uses at each scale, the default first:
    bundled weights (with their Set5 PSNR), else the official checkpoint, downloaded on first use.
    """
    rows = model_rows()
    if as_json:
        click.echo(json.dumps({"default": default_model_name(), "models": rows}, indent=2))
        return
    head = ("model", "scales", "colour", "input", "params", "weights", "paper")
    table = [
        (
            r["name"],
            r["scales"],
            r["colour"],
            r["input"],
            f"{r['params']:,} ({r['params_at']})",
            r["weights"],
            r["title"],
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *table, strict=True)]
    for line in (head, *table):
        click.echo("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())
    click.echo("\nwhich model for which input:")
    by_input: dict[str, list[str]] = {}
    for spec in REGISTRY:
        by_input.setdefault(spec.fits, []).append(spec.name)
    for fits, names in by_input.items():
        click.echo(f"  {fits}: {', '.join(names)}")
    click.echo(f"\ndefault model: {default_model_name()}")
    click.echo(
        f"weights: what -m NAME runs without --weights (the first listed unless --scale says otherwise); "
        f"official checkpoints are fetched into {hub.weights_dir()} on first use, never with --offline"
    )
