"""Training recipes: the losses, optimiser and schedule each paper trained its model with.

A recipe is data, not code: the loop reads it, and every field can be overridden from the command line
or a config file. Iteration counts and batch sizes are the papers'; on a CPU one passes ``--iters`` and
``--time-limit`` to fit the machine. Values the papers leave open are marked as ours in ``note``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from ..errors import UpscaleError

Objective = Literal["pixel", "drcn", "perceptual", "srgan", "esrgan", "drn", "rlfn-contrastive"]


@dataclass(frozen=True)
class Recipe:
    name: str
    models: tuple[str, ...]
    """Registry names the recipe trains."""
    paper: str
    objective: Objective = "pixel"
    """Which loss function the loop computes (see :mod:`upscale.train.objectives`)."""
    pixel_loss: Literal["l1", "mse"] = "l1"
    loss_weights: Mapping[str, float] = field(default_factory=dict)
    """Weights of the loss terms of the objective (``pixel``, ``adv``, ``percep``, ``tv``, ``dual``, ``cl``)."""
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    """SGD only."""
    weight_decay: float = 0.0
    last_layer_lr_factor: float = 1.0
    """SRCNN trains its last layer at a tenth of the others' rate."""
    schedule: Literal["constant", "cosine", "step"] = "constant"
    milestones: tuple[float, ...] = ()
    """``step``: fractions of ``iters`` where the learning rate is multiplied by ``gamma``."""
    gamma: float = 0.5
    lr_min: float = 1e-7
    """``cosine``: the final learning rate."""
    iters: int = 100_000
    batch_size: int = 16
    patch: int = 96
    """Side of the high-resolution training crop, in pixels."""
    grad_clip: float = 0.0
    """Clip the gradient norm to this (0: off)."""
    ema: float = 0.0
    """Decay of the exponential moving average of the weights (0: off); the average is what is saved."""
    loss_crop: int = 0
    """Pixels dropped at every edge of output and target before the loss (SRCNN trains valid convolutions)."""
    needs_init: bool = False
    """The recipe continues a previous stage: ``--init`` is required."""
    vgg: Literal["", "vgg16", "vgg19"] = ""
    """Feature network of the perceptual loss, if any."""
    discriminator: Literal["", "srgan", "vgg128"] = ""
    d_lr: float = 1e-4
    note: str = ""

    def override(self, **values: Any) -> Recipe:
        """A copy with the given fields replaced (``None`` values are ignored)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UpscaleError(f"unknown recipe field(s): {', '.join(unknown)}")
        return replace(self, **{k: v for k, v in values.items() if v is not None})


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        "srcnn",
        ("srcnn",),
        "Dong et al., ECCV 2014 / TPAMI 2016",
        pixel_loss="mse",
        optimizer="sgd",
        lr=1e-4,
        last_layer_lr_factor=0.1,
        iters=1_000_000,
        batch_size=128,
        patch=33,
        loss_crop=6,
        note="MSE on Y over the valid centre of 33x33 sub-images (21x21 for 9-1-5: loss_crop 6; use 8 for 9-5-5)",
    ),
    Recipe(
        "drcn",
        ("drcn",),
        "Kim et al., CVPR 2016",
        objective="drcn",
        optimizer="sgd",
        lr=0.01,
        weight_decay=1e-4,
        grad_clip=0.4,
        schedule="step",
        milestones=(0.5, 0.75),
        gamma=0.1,
        iters=200_000,
        batch_size=64,
        patch=41,
        note="recursive supervision with alpha decaying linearly 1 -> 0 over the first quarter (ours: the paper gives"
        " no schedule); step decay replaces the paper's plateau rule; the gradient-norm clip value is ours",
    ),
    Recipe(
        "perceptual",
        ("perceptual",),
        "Johnson et al., ECCV 2016",
        objective="perceptual",
        loss_weights={"percep": 1.0, "tv": 1e-5},
        lr=1e-3,
        iters=200_000,
        batch_size=4,
        patch=288,
        vgg="vgg16",
        note="feature reconstruction at VGG16 relu2_2 plus total variation (weight from the paper's 1e-6..1e-4 range)",
    ),
    Recipe(
        "perceptual-pixel",
        ("perceptual",),
        "Johnson et al., ECCV 2016 (the per-pixel baseline)",
        pixel_loss="mse",
        lr=1e-3,
        iters=200_000,
        batch_size=4,
        patch=288,
        note="the paper's per-pixel-loss baseline; needs no VGG weights",
    ),
    Recipe(
        "srresnet",
        ("srresnet", "msrresnet"),
        "Ledig et al., CVPR 2017",
        pixel_loss="mse",
        lr=1e-4,
        iters=1_000_000,
        batch_size=16,
        patch=96,
    ),
    Recipe(
        "srgan",
        ("srgan",),
        "Ledig et al., CVPR 2017",
        objective="srgan",
        loss_weights={"percep": 1.0, "adv": 1e-3},
        lr=1e-4,
        d_lr=1e-4,
        schedule="step",
        milestones=(0.5,),
        gamma=0.1,
        iters=200_000,
        batch_size=16,
        patch=96,
        needs_init=True,
        vgg="vgg19",
        discriminator="srgan",
        note="initialised from an SRResNet run (--init); VGG19 relu5_4 content loss (features / 12.75)",
    ),
    Recipe(
        "esrgan-psnr",
        ("esrgan",),
        "Wang et al., ECCVW 2018 (RRDB_PSNR)",
        lr=2e-4,
        schedule="step",
        milestones=(0.2, 0.4, 0.6, 0.8),
        gamma=0.5,
        iters=1_000_000,
        batch_size=16,
        patch=128,
        ema=0.999,
    ),
    Recipe(
        "esrgan-gan",
        ("esrgan",),
        "Wang et al., ECCVW 2018 (ESRGAN)",
        objective="esrgan",
        loss_weights={"pixel": 1e-2, "percep": 1.0, "adv": 5e-3},
        lr=1e-4,
        d_lr=1e-4,
        schedule="step",
        milestones=(0.125, 0.25, 0.5, 0.75),
        gamma=0.5,
        iters=400_000,
        batch_size=16,
        patch=128,
        ema=0.999,
        needs_init=True,
        vgg="vgg19",
        discriminator="vgg128",
        note="initialised from an esrgan-psnr run (--init); VGG19 conv5_4 before ReLU, L1; RaGAN terms averaged",
    ),
    Recipe(
        "drn",
        ("drn-s", "drn-l"),
        "Guo et al., CVPR 2020",
        objective="drn",
        loss_weights={"dual": 0.1},
        lr=1e-4,
        schedule="cosine",
        iters=1_000_000,
        batch_size=32,
        patch=384,
        note="L1 on every scale's output plus lambda=0.1 dual regression; --unpaired adds the dual loss on LR-only"
        " data",
    ),
    Recipe(
        "rlfn",
        ("rlfn", "rlfn-s"),
        "Kong et al., CVPRW 2022 (stages 1 and 2: L1)",
        lr=5e-4,
        schedule="step",
        milestones=(0.2, 0.4, 0.6, 0.8),
        gamma=0.5,
        iters=1_000_000,
        batch_size=64,
        patch=256,
        note="stage 2 is the same recipe warm-started from stage 1 (--init); the halving period is ours",
    ),
    Recipe(
        "rlfn-contrastive",
        ("rlfn", "rlfn-s"),
        "Kong et al., CVPRW 2022 (stage 3: L1 + contrastive)",
        objective="rlfn-contrastive",
        loss_weights={"pixel": 1.0, "cl": 0.05},
        lr=5e-4,
        schedule="step",
        milestones=(0.2, 0.4, 0.6, 0.8),
        gamma=0.5,
        iters=1_000_000,
        batch_size=64,
        patch=256,
        needs_init=True,
        note="contrastive loss on tanh features of a fixed random shallow extractor; its weight is ours",
    ),
    Recipe(
        "rlfn-l2",
        ("rlfn", "rlfn-s"),
        "Kong et al., CVPRW 2022 (final fine-tune with L2)",
        pixel_loss="mse",
        lr=2e-5,
        schedule="cosine",
        iters=100_000,
        batch_size=64,
        patch=256,
        needs_init=True,
    ),
    Recipe(
        "realesrnet-compact",
        ("compact",),
        "Wang et al., ICCVW 2021 (Real-ESRNet: L1)",
        lr=2e-4,
        betas=(0.9, 0.99),
        iters=1_000_000,
        batch_size=48,
        patch=256,
        ema=0.999,
        note="Real-ESRNet's PSNR-oriented stage (train_realesrnet_x4plus.yml: 12 per GPU on 4 GPUs, lr halved only at"
        " the end); the compact models' own settings are unpublished; --degradation real for its synthetic LR",
    ),
)

STAGES: Mapping[str, Mapping[str, str]] = {
    "rlfn": {"1": "rlfn", "2": "rlfn", "3": "rlfn-contrastive", "4": "rlfn-l2"},
    "rlfn-s": {"1": "rlfn", "2": "rlfn", "3": "rlfn-contrastive", "4": "rlfn-l2"},
    "esrgan": {"psnr": "esrgan-psnr", "gan": "esrgan-gan"},
    "srresnet": {"mse": "srresnet"},
    "srgan": {"gan": "srgan"},
}
"""``--stage`` names per model and the recipe each one runs."""


def get_recipe(name: str) -> Recipe:
    for r in RECIPES:
        if r.name == name:
            return r
    raise UpscaleError(f"unknown recipe '{name}'; known: {', '.join(r.name for r in RECIPES)}")


def recipe_for(model: str, recipe: str | None = None, stage: str | None = None) -> Recipe:
    """The recipe for ``model``: named, chosen by ``stage``, or the model's first (its paper's main one)."""
    if recipe is not None:
        chosen = get_recipe(recipe)
    elif stage is not None:
        stages = STAGES.get(model)
        if not stages or stage not in stages:
            known = ", ".join(stages) if stages else "none"
            raise UpscaleError(f"model '{model}' has no training stage '{stage}' (stages: {known})")
        chosen = get_recipe(stages[stage])
    else:
        chosen = next((r for r in RECIPES if model in r.models), None)
        if chosen is None:
            raise UpscaleError(f"no training recipe for model '{model}'")
    if model not in chosen.models:
        raise UpscaleError(f"recipe '{chosen.name}' trains {', '.join(chosen.models)}, not '{model}'")
    return chosen


def iter_recipes_table() -> Iterator[tuple[str, str, str, str, str]]:
    """Rows for ``--list-recipes``: name, models, paper, defaults, note."""
    for r in RECIPES:
        loss = r.pixel_loss if r.objective == "pixel" else r.objective
        defaults = (
            f"{loss}, {r.optimizer} lr {r.lr:g} ({r.schedule}), {r.iters} iters, batch {r.batch_size}, patch {r.patch}"
            + (f", ema {r.ema}" if r.ema else "")
            + (f", loss weights {dict(r.loss_weights)}" if r.loss_weights else "")
            + (", init required" if r.needs_init else "")
        )
        yield r.name, ", ".join(r.models), r.paper, defaults, r.note
