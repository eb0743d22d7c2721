"""Make a short sample clip to try ``upscale video`` on: a slow pan across scikit-image photos, with a tone.

    python examples/make_sample_clip.py sample.mp4 --size 320x180 --seconds 4

Needs scikit-image for the photos (``pip install scikit-image``); PyAV does the encoding.
"""

from __future__ import annotations

import argparse
from fractions import Fraction

import av
import cv2
import numpy as np
from skimage import data

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
SAMPLE_RATE = 48000


def pan(photo: np.ndarray, width: int, height: int, n: int) -> list[np.ndarray]:
    """``n`` frames sliding from the left edge of ``photo`` to its right edge."""
    scale = height / photo.shape[0] * 1.25
    img = cv2.resize(
        photo,
        (max(width + 1, round(photo.shape[1] * scale)), round(photo.shape[0] * scale)),
        interpolation=cv2.INTER_AREA,
    )
    top = (img.shape[0] - height) // 2
    span = img.shape[1] - width
    return [img[top : top + height, round(span * i / max(n - 1, 1)) :][:, :width] for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="file to write (.mp4, .mkv, .webm ...)")
    parser.add_argument("--size", default="320x180", help="WxH (even numbers), default 320x180")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--fps", type=int, default=24)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    total = round(args.seconds * args.fps)
    per_photo = -(-total // len(PHOTOS))

    frames: list[np.ndarray] = []
    for name in PHOTOS:
        photo = getattr(data, name)()
        photo = np.stack([photo] * 3, axis=-1) if photo.ndim == 2 else photo[..., :3]
        frames += pan(photo, width, height, per_photo)
    frames = frames[:total]

    with av.open(args.output, "w") as out:
        video = out.add_stream("libx264" if not args.output.endswith(".webm") else "libvpx-vp9", rate=args.fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = out.add_stream(
            "aac" if not args.output.endswith(".webm") else "libopus", rate=SAMPLE_RATE, layout="stereo"
        )
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))

        t = np.arange(round(len(frames) / args.fps * SAMPLE_RATE)) / SAMPLE_RATE
        tone = 0.2 * np.sin(2 * np.pi * 440 * t) * np.minimum(1, 10 * t)  # 440 Hz, faded in
        stereo = np.stack([tone, tone]).astype(np.float32)
        step = audio.codec_context.frame_size or 1024
        for k in range(0, stereo.shape[1], step):
            chunk = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(stereo[:, k : k + step]), format="fltp", layout="stereo"
            )
            chunk.sample_rate, chunk.pts, chunk.time_base = SAMPLE_RATE, k, Fraction(1, SAMPLE_RATE)
            out.mux(audio.encode(chunk))
        out.mux(audio.encode(None))
    print(f"{args.output}: {len(frames)} frames of {width}x{height} at {args.fps} fps, with a 440 Hz tone")


if __name__ == "__main__":
    main()
