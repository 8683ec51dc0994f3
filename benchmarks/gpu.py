"""The GPU run: ``python benchmarks/gpu.py --data PHOTOS --out FOLDER`` (at most 9 minutes on one GPU).

Makes the README's GPU figures, each printed as one JSON line (``{"figure": ..., ...}``) and kept in
``FOLDER/figures.jsonl``:

* ``optimize_iteration``: milliseconds per L-BFGS iteration of the optimization (loss network
  forward and backward, losses, update), median over 20 iterations after warm-up, at 512², 1024²
  and 2048², fp32 and bf16, with each iteration replayed as a CUDA graph and without; peak memory;
* ``default_job``: the default job (``impasto stylize examples/lighthouse.jpg
  examples/starry_night.jpg``, 512 px) in a warm process, as a service worker runs it (a
  :class:`impasto.jobs.Runner` that keeps its loss network);
* ``fast_inference``: the shipped model's milliseconds per image at 512, 1024 and 2048 px;
* ``train``: the shipped model trained at GPU settings (batch 32, 6 loader workers) for
  ``--train-minutes`` each, once from its current weights (lr 5e-4) and once from scratch (lr
  4e-3): steps a second, crops a second, skipped steps, last losses. The models, their cards,
  samples and loss logs are written to FOLDER (``from_shipped.pt``, ``from_scratch.pt``...);
* ``torchrun``: the same training for a few steps under ``torchrun --nproc_per_node 1`` (NCCL);
* ``decoders``: the universal method's decoders (``--method wct``) trained at GPU settings (batch
  32, 256 px crops) for ``--decoder-minutes``, from the shipped ones where there are (else from
  scratch): ``decoders.pt`` and its log in FOLDER, steps a second. This part runs first: it makes a
  model to ship, which a run cut short by its lease should not lose.

The photos live outside the repository (``../shared/training/imagenet-sample``): copy them into a
git-ignored folder of the checkout to carry them to a GPU machine, and name it with ``--data``.
``--device cpu --sizes 64 --train-minutes 0.05 --quick`` runs every part at toy size on a CPU (the
suite's smoke test does that).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from common import EXAMPLES, ROOT, SHARED
from impasto.fast import TrainConfig, load_model, train
from impasto.losses.config import LossConfig
from impasto.losses.objective import build_objective, style_targets
from impasto.nets.vgg import build_extractor
from impasto.optimize.optimizers import optimize
from impasto.runtime import autocast_dtype

SHIPPED = "multistyle6"
SHIPPED_SETTINGS = dict(size=256, width=0.25, blocks=9, style_weight=15.0, tv_weight=10.0, lattice_weight=1000.0,
                        content_layers=("relu3_1",))


class Figures:
    """Prints each figure as a JSON line and keeps them in OUT/figures.jsonl."""

    def __init__(self, path: Path, device: torch.device) -> None:
        self.path, self.device = path, device
        self.path.write_text("")

    def __call__(self, figure: str, **values) -> None:
        line = json.dumps({"figure": figure, **values})
        print(line, flush=True)
        with self.path.open("a") as fh:
            fh.write(line + "\n")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def optimize_iterations(figures: Figures, device: torch.device, sizes: list[int], iterations: int) -> None:
    """ms per iteration: the time between the read-backs of step 10 and of the last step."""
    loss = LossConfig()
    extractor = build_extractor(loss.layers, device=device)
    for size in sizes:
        g = torch.Generator().manual_seed(0)
        content, style = torch.rand(1, 3, size, size, generator=g), torch.rand(1, 3, 512, 512, generator=g)
        for precision in ("fp32", "bf16"):
            dtype = autocast_dtype(precision, device)
            with torch.no_grad():
                targets = style_targets(extractor, [[style.to(device)]], loss)
                objective = build_objective(extractor, content.to(device), targets, loss, autocast_dtype=dtype)
            for graphs in (False, True):
                stamps: dict[int, float] = {}

                def on_step(step, losses, x, stamps=stamps):
                    stamps[step] = time.perf_counter()

                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                sync(device)
                optimize(content.to(device), objective, iterations=iterations + 10, lr=1.0, callback=on_step,
                         sync_every=10, graphs=graphs)
                sync(device)
                ms = 1000 * (stamps[iterations + 10] - stamps[10]) / iterations
                peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
                figures("optimize_iteration", size=size, precision=precision, cuda_graphs=graphs,
                        ms=round(ms, 3), peak_gib=None if peak is None else round(peak, 2))
        del objective, targets


def default_job(figures: Figures, device: torch.device) -> None:
    """The default 512 px job, twice in one process: the first pays for loading, the second is what a
    warm service worker takes."""
    from impasto.jobs import Recipe, Runner

    runner = Runner()
    recipe = Recipe("optimize", {"device": str(device)})
    for attempt in ("cold", "warm"):
        sync(device)
        t0 = time.perf_counter()
        runner.run(recipe, EXAMPLES / "lighthouse.jpg", [EXAMPLES / "starry_night.jpg"])
        sync(device)
        figures("default_job", run=attempt, seconds=round(time.perf_counter() - t0, 3))


def fast_inference(figures: Figures, device: torch.device, sizes: list[int], repeats: int) -> None:
    for precision in ("fp32", "bf16"):
        model = load_model(SHIPPED, device=device, precision=precision)
        weights = model.style_vector("udnie", None)
        for size in sizes:
            image = torch.rand(1, 3, size, size, device=device)
            times = []
            for _ in range(repeats + 2):
                sync(device)
                t0 = time.perf_counter()
                with torch.no_grad():
                    model.run(image, weights, tile=4096)
                sync(device)
                times.append(time.perf_counter() - t0)
            figures("fast_inference", size=size, precision=precision,
                    ms=round(1000 * statistics.median(times[2:]), 3))


RUNS = {"from_shipped": (SHIPPED, 5e-4), "from_scratch": (None, 4e-3)}


def train_runs(figures: Figures, device: torch.device, data: str, out: Path, minutes: float, batch: int,
               workers: int, quick: bool, runs: list[str]) -> None:
    from impasto.gallery import painting

    shipped = load_model(SHIPPED)
    styles = [str(painting(name)) for name in shipped.styles]
    for name in runs:
        init, lr = RUNS[name]
        settings = {**SHIPPED_SETTINGS, **({"size": 64, "style_size": 64} if quick else {})}
        config = TrainConfig.from_options(**settings, batch_size=batch, lr=lr, workers=workers, steps=1_000_000,
                                          max_minutes=minutes, checkpoint_every=500, sample_every=500,
                                          device=str(device))
        log: list[dict] = []

        def on_step(event, log=log):
            if event.step % 50 == 0 or event.step == 1:
                log.append({"step": event.step, "elapsed": round(event.elapsed, 2), **event.losses})

        t0 = time.perf_counter()
        model = train(styles, [data], out / f"{name}.pt", config=config, init=init, force=True, callback=on_step,
                      sample=str(EXAMPLES / "lighthouse.jpg"))
        seconds = time.perf_counter() - t0
        (out / f"{name}.log.json").write_text(json.dumps({"training": model.training, "log": log}))
        steps = model.training["steps_done"]
        figures("train", run=name, steps=steps, seconds=round(seconds, 1),
                steps_per_second=round(steps / model.training["train_seconds"], 2),
                crops_per_second=round(steps * batch / model.training["train_seconds"], 1),
                skipped=len(model.training["skipped_steps"]), last=log[-1] if log else None)


def torchrun_run(figures: Figures, device: torch.device, data: str, out: Path, quick: bool) -> None:
    """A few steps of `impasto train` under torchrun (NCCL on a GPU, gloo on a CPU)."""
    from impasto.gallery import painting

    # `impasto train` as torchrun runs it; from the checkout's src/, installed or not
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "-m", "impasto", "train",
           str(painting("udnie")), "--data", data, "-o", str(out / "torchrun.pt"), "--steps", "20",
           "--batch-size", "8", "--device", str(device), "--quiet", "--force", "--workers", "2",
           *(["--size", "64", "--style-size", "64"] if quick else [])]
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=out, env=env)
    figures("torchrun", ok=done.returncode == 0, seconds=round(time.perf_counter() - t0, 1),
            error=None if done.returncode == 0 else error_line(done.stderr))


def error_line(stderr: str) -> str:
    """The child's own last line (impasto's one-line error, or a traceback's last), not torchrun's banner."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and not set(line.strip()) <= set("=-")]
    mine = [line for line in lines if line.startswith(("error:", "impasto:")) or "Error" in line]
    return (mine or lines or ["?"])[-1][:300]


def decoder_run(figures: Figures, device: torch.device, data: str, out: Path, minutes: float, batch: int,
                workers: int, quick: bool) -> None:
    from impasto.universal.model import shipped_decoders
    from impasto.universal.train import DecoderTrainingConfig, train_decoders

    start = shipped_decoders()
    config = DecoderTrainingConfig(size=64 if quick else 256, batch_size=batch, steps=1_000_000, lr=2e-4,
                                   max_minutes=minutes, workers=workers, device=str(device), checkpoint_every=500)
    log: list[dict] = []

    def on_step(event, log=log):
        if event.step % 50 == 0 or event.step == 1:
            log.append({"step": event.step, "elapsed": round(event.elapsed, 2), **event.losses})

    decoders = train_decoders([data], out / "decoders.pt", config=config, force=True, callback=on_step,
                              init=start)
    record = decoders.training_record
    (out / "decoders.log.json").write_text(json.dumps({"training": record, "log": log}))
    figures("decoders", steps=record["steps_done"], from_shipped=start is not None,
            steps_per_second=round(record["steps_done"] / max(record["train_seconds"], 1e-9), 2),
            last=log[-1] if log else None)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(SHARED / "training" / "imagenet-sample"), help="folder of training photos")
    p.add_argument("--out", required=True, help="folder for the figures, models, samples and logs")
    p.add_argument("--device", default="cuda")
    p.add_argument("--sizes", default="512,1024,2048", help="optimization sizes (square)")
    p.add_argument("--fast-sizes", default="512,1024,2048")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--train-minutes", type=float, default=2.0, help="for each of the two training runs")
    p.add_argument("--train-runs", default=",".join(RUNS), help=f"which training runs: {', '.join(RUNS)}")
    p.add_argument("--decoder-minutes", type=float, default=1.5, help="for the decoders' training")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=6)
    p.add_argument("--quick", action="store_true", help="toy sizes everywhere (a smoke test on a CPU)")
    p.add_argument("--skip", default="",
                   help="comma-separated parts to skip: optimize,job,fast,train,torchrun,decoders")
    args = p.parse_args()
    runs = [r for r in args.train_runs.split(",") if r]
    if unknown := sorted(set(runs) - set(RUNS)):
        p.error(f"unknown --train-runs {', '.join(unknown)}; choose from {', '.join(RUNS)}")

    args.data = str(Path(args.data).resolve())  # torchrun's child runs in OUT
    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figures = Figures(out / "figures.jsonl", device)
    skip = set(filter(None, args.skip.split(",")))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    figures("machine", device=name, torch=torch.__version__, cuda=torch.version.cuda,
            cpus=os.cpu_count(), repo=str(ROOT))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    parts = [
        ("decoders", lambda: decoder_run(figures, device, args.data, out, args.decoder_minutes, args.batch_size,
                                         args.workers, args.quick)),
        ("optimize", lambda: optimize_iterations(figures, device, [int(s) for s in args.sizes.split(",")],
                                                 args.iterations)),
        ("job", lambda: default_job(figures, device)),
        ("fast", lambda: fast_inference(figures, device, [int(s) for s in args.fast_sizes.split(",")],
                                        3 if args.quick else 20)),
        ("train", lambda: train_runs(figures, device, args.data, out, args.train_minutes, args.batch_size,
                                     args.workers, args.quick, runs)),
        ("torchrun", lambda: torchrun_run(figures, device, args.data, out, args.quick)),
    ]
    for part, run in parts:
        if part in skip:
            continue
        t0 = time.perf_counter()
        try:
            run()
        except Exception as exc:  # one part's failure is a figure too; the others still run
            figures("error", part=part, error=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}")
        figures("part_seconds", part=part, seconds=round(time.perf_counter() - t0, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
