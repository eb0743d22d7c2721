"""Add a training run's weights to ``weights/`` with their manifest entry.

Scores the run's ``final.safetensors`` with ``upscale eval`` (PSNR/SSIM on Y beside bicubic), stores
the weights as fp16 safetensors (loading casts them to the run precision), and records how they were
trained: the resolved settings, the equivalent command line, iterations, training time, machine and
precision. The manifest's scores are those of the stored fp16 file, so anyone can recompute them.

    python examples/bundle_weights.py runs/rlfn_x4 --bench ../shared/data/bench/Set5 ../shared/data/bench/Set14 \
        --data-note "T91 + BSD200"

Weights trained in stages (a run started with ``--init`` from another run's result) name the earlier
runs with ``--after``, in order: the manifest then gives each stage's command, and the iterations and
training time of all of them. The stages behind a bundled file that the first run started from (``--init
weights/rlfn_x4.safetensors``) come from that file's manifest entry. A stage whose
``--config`` file changed its recipe (a cosine schedule, say) names ``--config recipe.toml`` and gives
that file's text under ``recipe.toml``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file

from upscale.sysinfo import machine
from upscale.train.recipes import get_recipe

_ON_COMMAND_LINE = {"name", "iters", "batch_size", "patch", "lr"}

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def folder(path: str) -> str:
    """A data set by its folder name (``T91/``): where it lies differs from machine to machine."""
    return Path(path).name + "/"


def recipe_changes(recipe: dict) -> dict:
    """The fields a run's ``--config`` file changed in its named recipe (the command line gives the rest)."""
    named = json.loads(json.dumps(dataclasses.asdict(get_recipe(recipe["name"]))))
    return {k: v for k, v in recipe.items() if k not in _ON_COMMAND_LINE and named.get(k) != v}


def config_file(changes: dict) -> str:
    """``recipe.toml`` as the command line of a stage names it (JSON scalars and lists are TOML too)."""
    return "[recipe]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in changes.items())


def command_line(cfg: dict) -> str:
    """The ``upscale train`` command equivalent to a run's resolved ``config.json``."""
    r = cfg["recipe"]
    parts = ["upscale train", cfg["model"], "--scale", str(cfg["scale"]), "--recipe", r["name"]]
    for d in cfg["data"]:
        parts += ["--data", folder(d)]
    for v in cfg["val"]:
        parts += ["--val", folder(v)]
    parts += ["--iters", str(r["iters"]), "--batch-size", str(r["batch_size"]), "--patch", str(r["patch"])]
    parts += ["--lr", f"{r['lr']:g}", "--seed", str(cfg["seed"]), "--precision", cfg["precision"]]
    if cfg.get("init"):
        init = Path(cfg["init"])  # a previous run's result or a bundled file, as given; never a machine path
        parts += ["--init", init.as_posix() if not init.is_absolute() else "/".join(init.parts[-3:])]
    if cfg.get("degradation", "bicubic") != "bicubic":
        parts += ["--degradation", cfg["degradation"]]
    for k, v in (cfg.get("arch") or {}).items():
        parts += ["--arch", f"{k}={v}"]
    if recipe_changes(r):
        parts += ["--config", "recipe.toml"]
    parts += ["--out", "runs/" + Path(cfg["out"]).name]
    return " ".join(parts)


def final_metadata(run: Path) -> dict:
    """The metadata ``upscale train`` wrote into a run's ``final.safetensors``."""
    with safe_open(str(run / "final.safetensors"), framework="pt") as f:
        return dict(f.metadata() or {})


def stage(run: Path) -> dict:
    """One training run: its command, iterations, training time, and the machine and precision."""
    cfg = json.loads((run / "config.json").read_text())
    meta = final_metadata(run)
    changes = recipe_changes(cfg["recipe"])
    return {
        "command": command_line(cfg),
        **({"recipe.toml": config_file(changes)} if changes else {}),
        "iterations": int(meta["iterations"]),
        "wall_time_s": int(float(meta.get("seconds", 0))),
        "lr": cfg["recipe"]["lr"],
        # older runs did not record their machine: bundle those where, and with the threads, they trained
        "machine": meta.get("machine") or machine(),
        "precision": meta.get("precision", cfg["precision"]),
    }


def bundled_stages(init: str | None, manifest: dict) -> list[dict]:
    """The stages behind a bundled file that a run started from (``--init weights/NAME``), as its
    manifest entry records them: their run folders need not exist any more."""
    if not init or Path(init).parent.name != "weights":
        return []
    entry = next((e for e in manifest["weights"] if e["file"] == Path(init).name), None)
    if entry is None:
        return []
    defaults = {"machine": entry["machine"], "precision": entry["precision"]}
    if "stages" in entry:
        return [{**defaults, **st} for st in entry["stages"]]
    one = {"command": entry["command"], "iterations": entry["iterations"], "wall_time_s": entry["wall_time_s"]}
    return [{**defaults, **one, "lr": entry["recipe"]["lr"]}]


def distinct(values: list[str]) -> str:
    return " + ".join(dict.fromkeys(values))


def evaluate(model: str, weights: Path, bench: list[str], *extra: str) -> dict:
    cmd = [sys.executable, "-m", "upscale", "eval", model, "--weights", str(weights), "--json", "-q", *extra]
    for b in bench:
        cmd += ["--data", b]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def scores_of(results: dict) -> tuple[dict, dict]:
    """``({set: {psnr, ssim}}, {set: bicubic {psnr, ssim}})`` of an ``upscale eval --json`` result."""
    scores, bicubic = {}, {}
    for d in results["datasets"]:
        m = d["mean"]
        scores[d["name"]] = {"psnr": round(m["psnr"], 4), "ssim": round(m["ssim"], 4)}
        bicubic[d["name"]] = {"psnr": round(m["bicubic_psnr"], 4), "ssim": round(m["bicubic_ssim"], 4)}
    return scores, bicubic


def real_world_scores(model: str, dest: Path, baseline: str, bench: list[str], seed: int) -> dict:
    """Scores of the file and of the bundled ``baseline`` file on the benchmarks degraded by the real-world
    pipeline (``upscale eval --degradation real --seed SEED``): the bar of a real-world model."""
    extra = ("--degradation", "real", "--seed", str(seed))
    scores, bicubic = scores_of(evaluate(model, dest, bench, *extra))
    base_model = next(
        e["model"] for e in json.loads((WEIGHTS / "manifest.json").read_text())["weights"] if e["file"] == baseline
    )
    base, _ = scores_of(evaluate(base_model, WEIGHTS / baseline, bench, *extra))
    return {"seed": seed, "scores": scores, "bicubic": bicubic, "baseline": {"file": baseline, "scores": base}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="run folder of 'upscale train'")
    p.add_argument("--bench", nargs="+", required=True, help="benchmark folders (Set5, Set14)")
    p.add_argument("--data-note", required=True, help="what the training data were")
    p.add_argument("--note", default="", help="anything else a reader should know")
    p.add_argument(
        "--extra-seconds", type=float, default=0.0, help="training time of sessions the checkpoint did not count"
    )
    p.add_argument("--after", type=Path, nargs="*", default=[], help="earlier stages' run folders, in order")
    p.add_argument("--out", type=Path, default=WEIGHTS)
    p.add_argument(
        "--model", default=None, help="bundle under this registry name of the run's network (rlfn-real for rlfn)"
    )
    p.add_argument(
        "--real-world-baseline",
        default=None,
        metavar="FILE",
        help="also score on real-world degraded benchmarks, beside this bundled file (rlfn_x4.safetensors)",
    )
    args = p.parse_args()

    cfg = json.loads((args.run / "config.json").read_text())
    final = args.run / "final.safetensors"
    meta = final_metadata(args.run)
    model, scale = args.model or meta["model"], int(meta["scale"])
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    first = json.loads(((args.after or [args.run])[0] / "config.json").read_text())
    earlier = bundled_stages(first.get("init"), manifest) + [stage(run) for run in args.after]
    stages = [*earlier, stage(args.run)]
    iterations = sum(st["iterations"] for st in stages)
    seconds = sum(st["wall_time_s"] for st in stages) + args.extra_seconds
    name = f"{model}_x{scale}.safetensors"
    dest = args.out / name
    tensors = {k: v.half() if v.is_floating_point() else v for k, v in load_file(str(final)).items()}
    save_file(tensors, str(dest), metadata={**meta, "model": model, "iterations": str(iterations), "storage": "fp16"})
    dest.chmod(0o644)
    scores, bicubic = scores_of(evaluate(model, dest, args.bench))
    entry = {
        "file": name,
        "sha256": hashlib.sha256(dest.read_bytes()).hexdigest(),
        "model": model,
        "scale": scale,
        "params": sum(v.numel() for v in tensors.values() if v.is_floating_point()),
        "recipe": cfg["recipe"],
        "command": " ; then ".join(st["command"] for st in stages),
        "data": args.data_note,
        "iterations": iterations,
        "wall_time_s": int(seconds),
        "machine": distinct([st["machine"] for st in stages]),
        "precision": distinct([st["precision"] for st in stages]),
        "storage": "fp16",
        "scores": scores,
        "bicubic": bicubic,
        "note": args.note,
    }
    if cfg.get("degradation", "bicubic") != "bicubic":
        entry["degradation"] = cfg["degradation"]
    if args.real_world_baseline:
        entry["real_world"] = real_world_scores(model, dest, args.real_world_baseline, args.bench, seed=0)
    if len(stages) > 1 or "recipe.toml" in stages[0]:
        entry["stages"] = stages
    manifest["weights"] = [e for e in manifest["weights"] if e["file"] != name] + [entry]
    manifest["weights"].sort(key=lambda e: (e["model"], e["scale"]))
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(
        f"{dest}: " + ", ".join(f"{k} {v['psnr']:.2f} dB (bicubic {bicubic[k]['psnr']:.2f})" for k, v in scores.items())
    )


if __name__ == "__main__":
    main()
