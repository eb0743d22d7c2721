"""Engine overhead: the engine's frames/s divided by a bare ``model(x)`` loop's, on the same frames.

The bare loop batches frames, moves them to the device, runs the network and brings uint8 back; the
engine adds colour handling, padding, tiling, stitching, clamping and rounding. Targets: >= 0.95
untiled, >= 0.85 tiled. The bare loop over the engine's own tile windows separates the cost of tile
overlap (more pixels for the network) from the engine's own work. The forward pass alone (tensors kept
on the device) shows what the transfers cost.

    python benchmarks/engine_overhead.py                                  # rlfn x4, 640x360
    python benchmarks/engine_overhead.py --device cuda --size 1280x720 --tile 256
"""

from __future__ import annotations

import _harness as h


def main() -> None:
    p = h.parser(__doc__ or "")
    p.add_argument("--tile", type=int, default=128, help="tile size for the tiled run (LR px, default 128)")
    p.add_argument("--precision", default="fp32", help="fp32, fp16 or bf16 (default fp32)")
    args = p.parse_args()
    loaded = h.load(args)
    frames = h.frames_of(args)
    untiled = h.upscaler(loaded, args, precision=args.precision, tile=0)
    tiled = h.upscaler(loaded, args, precision=args.precision, tile=args.tile)
    t = h.interleaved(
        {
            "bare forward, no transfers": h.bare_run(untiled, frames, transfers=False),
            "bare model(x) loop": h.bare_run(untiled, frames),
            "engine, untiled": h.engine_run(untiled, frames),
            f"bare loop on tile {args.tile} windows": h.bare_run(tiled, frames, planes=h.tile_windows(tiled, frames)),
            f"engine, tile {args.tile}": h.engine_run(tiled, frames),
        },
        args.rounds,
    )
    n = len(frames)
    print(f"{loaded.spec.name} x{loaded.scale}, {n} frames of {args.size}, {untiled.dtype}, batch {untiled.batch_size}")
    print(h.machine(args.device))
    for name, sec in t.items():
        print(f"  {name:<28} {n / sec:8.3f} frames/s")
    bare = t["bare model(x) loop"]
    print(f"engine untiled / bare loop:     {bare / t['engine, untiled']:.3f}   (target >= 0.95)")
    work = h.window_area_ratio(tiled, frames[0])
    print(
        f"engine tile {args.tile} / bare loop:    {bare / t[f'engine, tile {args.tile}']:.3f}   (target >= 0.85;"
        f" tiles make the network see {work:.2f}x the pixels, pad {tiled.tile_pad})"
    )
    same_tiles = t[f"bare loop on tile {args.tile} windows"]
    print(f"engine tile {args.tile} / bare loop on its tiles: {same_tiles / t[f'engine, tile {args.tile}']:.3f}")
    print(f"bare loop / forward alone:      {t['bare forward, no transfers'] / bare:.3f}")


if __name__ == "__main__":
    main()
