"""Tiling cost: the engine's frames/s with tiles divided by its frames/s on whole frames.

Each tile carries ``tile_pad`` pixels of context on every side, so tiling does extra work; the
"work" column is the input area the network sees (windows summed) over the frame area, the
overhead one would expect if time followed pixels.

    python benchmarks/tiling_cost.py                                      # rlfn x4, 640x360
    python benchmarks/tiling_cost.py --device cuda --tiles 128,256,512
"""

from __future__ import annotations

import _harness as h


def main() -> None:
    p = h.parser(__doc__ or "")
    p.add_argument("--tiles", default="128,256", help="tile sizes (LR px), comma-separated (default 128,256)")
    p.add_argument("--precision", default="fp32")
    args = p.parse_args()
    loaded = h.load(args)
    frames = h.frames_of(args)
    sizes = [int(t) for t in args.tiles.split(",")]
    ups = {t: h.upscaler(loaded, args, precision=args.precision, tile=t) for t in [0, *sizes]}
    t = h.interleaved({f"tile {k}": h.engine_run(up, frames) for k, up in ups.items()}, args.rounds)
    n = len(frames)
    print(f"{loaded.spec.name} x{loaded.scale}, {n} frames of {args.size}, {ups[0].dtype}, batch {ups[0].batch_size}")
    print(h.machine(args.device))
    print(f"  {'tiles':<10} {'frames/s':>9} {'tiled/untiled':>14} {'work':>6}")
    base = t["tile 0"]
    for k, up in ups.items():
        sec = t[f"tile {k}"]
        label = "untiled" if k == 0 else f"{k} (pad {up.tile_pad})"
        print(f"  {label:<10} {n / sec:9.3f} {base / sec:14.3f} {h.window_area_ratio(up, frames[0]):6.2f}")


if __name__ == "__main__":
    main()
