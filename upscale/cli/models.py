"""``upscale models``: the registered models and their bundled weights."""

from __future__ import annotations

import json

import click

from ..models import REGISTRY, build_model, default_model_name
from ..models.bundled import bundled_weights


def model_rows() -> list[dict[str, object]]:
    bundled = {}
    for b in bundled_weights():
        bundled.setdefault(b.model, []).append(f"x{b.scale}")
    rows = []
    for spec in REGISTRY:
        net = build_model(spec, spec.default_scale)
        scales = ", ".join(f"x{s}" for s in spec.scales) + ("+" if spec.any_scale else "")
        rows.append(
            {
                "name": spec.name,
                "scales": scales,
                "colour": spec.colour.upper() if spec.colour == "y" else "RGB",
                "input": "LR" if spec.input_kind == "lr" else "bicubic-up",
                "params": net.num_params,
                "params_at": f"x{spec.default_scale}",
                "bundled": ", ".join(sorted(bundled.get(spec.name, []))) or ("-" if spec.needs_weights else "n/a"),
                "title": spec.title,
            }
        )
    return rows


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models(as_json: bool) -> None:
    """List the models: scales, colour space, input, parameters, bundled weights."""
    rows = model_rows()
    if as_json:
        click.echo(json.dumps({"default": default_model_name(), "models": rows}, indent=2))
        return
    head = ("model", "scales", "colour", "input", "params", "bundled weights", "paper")
    table = [
        (
            r["name"],
            r["scales"],
            r["colour"],
            r["input"],
            f"{r['params']:,} ({r['params_at']})",
            r["bundled"],
            r["title"],
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *table, strict=True)]
    for line in (head, *table):
        click.echo("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())
    click.echo(f"\ndefault model: {default_model_name()}")
