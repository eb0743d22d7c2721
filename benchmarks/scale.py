"""Speed-up of N local Ray workers over one, on a folder of images and on a video (``--cluster local:N``).

Generates the inputs, starts a local Ray cluster once in this process, then times the real commands,
``upscale images`` and ``upscale video --segment 0.5``, with ``--cluster local:1``, ``--cluster local:N`` and
without ``--cluster`` (one process, for reference). This is the code a GPU cluster runs: the driver plans the
job and keeps its record, the files or segments go to a pool of Ray actors, and the video is assembled on the
driver. Each timing is the whole command (model loading, actors starting, writing outputs), so on small
inputs the fixed costs weigh; variants take turns and each keeps its best of ``--repeat``.

On a CPU-only machine the N workers share its cores (``--cluster local:N`` gives each cores/N threads), so
the speed-up says how much better N smaller engines use the cores than one large one. With GPUs, Ray gives
each worker one of them.

    python benchmarks/scale.py                                   # rlfn x4, workers = cores
    python benchmarks/scale.py --model bicubic --scale 2 --images 4 --seconds 2
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import _harness as h
import cv2
import numpy as np

from upscale.cli import main as upscale_main
from upscale.sysinfo import cpu_name

FPS = 24
KEYFRAME_S = 0.5
SEGMENT_S = 0.5


def photo_like(width: int, height: int, seed: int) -> np.ndarray:
    """An RGB image with detail at several scales (smooth areas, edges, fine texture), no test data needed."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.float32)
    for cells, weight in ((4, 0.5), (16, 0.3), (64, 0.2)):
        noise = rng.random((max(2, height * cells // width), cells, 3), dtype=np.float32)
        img += weight * cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def make_images(folder: Path, count: int, width: int, height: int) -> None:
    folder.mkdir()
    for i in range(count):
        bgr = cv2.cvtColor(photo_like(width, height, i), cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(folder / f"photo{i:03d}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])


def make_clip(path: Path, width: int, height: int, frames: int) -> None:
    """A pan across a photo-like image, libx264 with a keyframe every ``KEYFRAME_S`` seconds."""
    base = photo_like(width * 2, height, 1000)
    gop = str(round(FPS * KEYFRAME_S))
    h.encode_pan(path, base, width, frames, {"crf": "16", "g": gop, "keyint_min": gop, "sc_threshold": "0"}, FPS)


def run_cli(args: list[str]) -> float:
    """Seconds the command took, in this process (so it uses the Ray session already started here)."""
    from click.testing import CliRunner

    t0 = time.perf_counter()
    result = CliRunner().invoke(upscale_main, args, catch_exceptions=False)
    seconds = time.perf_counter() - t0
    if result.exit_code != 0:
        raise SystemExit(f"upscale {' '.join(args)} failed ({result.exit_code}):\n{result.output}")
    return seconds


def main() -> None:
    cores = os.cpu_count() or 1
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="rlfn", help="model name (default rlfn)")
    p.add_argument("--scale", type=int, default=None, help="model scale (default: the model's)")
    p.add_argument("--workers", type=int, default=None, help="N (default: the GPUs, else the cores)")
    p.add_argument("--images", type=int, default=16, help="images in the folder (default 16)")
    p.add_argument("--image-size", default="256x192", help="WxH of the images (default 256x192)")
    p.add_argument("--seconds", type=float, default=4.0, help="length of the video at 24 fps (default 4)")
    p.add_argument("--video-size", default="320x180", help="WxH of the video (default 320x180)")
    p.add_argument("--repeat", type=int, default=1, help="timings of each variant; the best counts (default 1)")
    args = p.parse_args()

    import ray
    import torch

    workers = args.workers or torch.cuda.device_count() or cores
    iw, ih = (int(v) for v in args.image_size.lower().split("x"))
    vw, vh = (int(v) for v in args.video_size.lower().split("x"))
    frames = max(2, round(args.seconds * FPS))
    model = ["-m", args.model, *(["-s", str(args.scale)] if args.scale else [])]

    ray.init(
        num_cpus=max(cores, workers),  # more workers than cores: they share them
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    gpus = int(ray.cluster_resources().get("GPU", 0))
    print(
        f"cpu: {cpu_name()}, {cores} cores{f', {gpus} GPUs' if gpus else ''}; load {os.getloadavg()[0]:.1f}; "
        f"torch {torch.__version__}, ray {ray.__version__}"
    )
    print(
        f"model {args.model}{f' x{args.scale}' if args.scale else ''}; {args.images} images {iw}x{ih}; "
        f"video {frames} frames {vw}x{vh} at {FPS} fps, --segment {SEGMENT_S}; best of {args.repeat}"
    )

    variants = {
        "one process": [],
        "local:1": ["--cluster", "local:1"],
        f"local:{workers}": ["--cluster", f"local:{workers}"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_images(root / "photos", args.images, iw, ih)
        make_clip(root / "clip.mp4", vw, vh, frames)
        tasks = {
            "images": (args.images, "files/s", lambda out: ["images", str(root / "photos"), "-o", str(out)]),
            "video": (
                frames,
                "frames/s",
                lambda out: ["video", str(root / "clip.mp4"), "-o", str(out / "clip.mp4"), "--segment", str(SEGMENT_S)],
            ),
        }
        best: dict[tuple[str, str], float] = {}
        runs = 0
        for _ in range(args.repeat):
            for task, (_, _, command) in tasks.items():
                for name, extra in variants.items():  # in turns, so drift on the machine hits all alike
                    runs += 1
                    out = root / f"out{runs}"
                    seconds = run_cli([*command(out), *model, *extra, "-q"])
                    best[task, name] = min(best.get((task, name), seconds), seconds)

    for task, (count, unit, _) in tasks.items():
        print(f"\n{task}: {count} {'files' if task == 'images' else 'frames'}")
        print(f"  {'variant':12s} {'seconds':>8s} {unit:>9s} {'vs 1 worker':>12s}")
        one = best[task, "local:1"]
        for name in variants:
            seconds = best[task, name]
            print(f"  {name:12s} {seconds:8.2f} {count / seconds:9.2f} {one / seconds:11.2f}x")
    ray.shutdown()


if __name__ == "__main__":
    main()
