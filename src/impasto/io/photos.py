"""Content photos for training: every readable image under some folders, as random square crops.

Each sample is a crop of a random side between ``min_scale`` and 1 times the photo's short side,
at a random place, resized to ``size`` and flipped left-right half of the time: a thousand photos
give many different crops, at several scales (how large an object is relative to the crop is
what the network must not overfit). Unreadable files are skipped, and listed in ``skipped``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from ..errors import InputError
from ..ops.geometry import resize
from .image import load_image

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def find_images(folders: Sequence[str | os.PathLike]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(readable image files, [(unreadable file, why)]) under ``folders``, sorted."""
    good: list[Path] = []
    bad: list[tuple[Path, str]] = []
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            raise InputError(f"training data folder does not exist: {str(root)!r}", fields=("data",))
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if path.suffix.lower() not in EXTENSIONS:
                continue
            try:
                with Image.open(path) as img:
                    img.verify()
                good.append(path)
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
                bad.append((path, type(exc).__name__))
    return good, bad


class Photos(torch.utils.data.Dataset):
    """Random crops of the photos under ``folders``; ``len`` is the number of photos."""

    def __init__(self, folders: Sequence[str | os.PathLike], size: int, *, min_scale: float = 0.5,
                 max_pixels: int = 40_000_000) -> None:
        self.files, self.skipped = find_images(folders)
        if not self.files:
            where = ", ".join(repr(str(f)) for f in folders)
            raise InputError(f"no readable images in {where}", fields=("data",))
        self.size, self.min_scale, self.max_pixels = size, min_scale, max_pixels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tensor:
        try:
            image = load_image(self.files[index], max_pixels=self.max_pixels).flat_rgb()
        except InputError:  # became unreadable since it was listed: use another photo
            return self[(index + 1) % len(self.files)]
        return random_crop(image, self.size, self.min_scale, random)[0]  # type: ignore[arg-type]


def random_crop(image: Tensor, size: int, min_scale: float, rng: random.Random) -> Tensor:
    """A random square crop of (1, 3, H, W) ``image`` resized to ``size``, maybe flipped."""
    h, w = image.shape[-2:]
    side = max(1, round(min(h, w) * rng.uniform(min_scale, 1.0)))
    y, x = rng.randint(0, h - side), rng.randint(0, w - side)
    crop = resize(image[..., y:y + side, x:x + side], (size, size))
    return crop.flip(-1) if rng.random() < 0.5 else crop


def endless(dataset: Photos, batch_size: int, workers: int, seed: int | None = None, ranks: Any = None, *,
            pin_memory: bool = False):
    """Batches of random crops forever (shuffled epochs), read by ``workers`` processes.

    ``pin_memory`` (for a CUDA run): batches come in page-locked memory, so that the copy to the
    GPU with ``non_blocking=True`` really overlaps the step.

    ``ranks`` (a :class:`impasto.runtime.Ranks` of a distributed run): this process reads only
    its own shard of the photos, a different one every epoch (DistributedSampler).
    """
    generator = torch.Generator()
    if seed is not None:
        generator.manual_seed(seed)
    sampler: torch.utils.data.DistributedSampler | None = None
    if ranks is not None and ranks.world > 1:
        sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=ranks.world, rank=ranks.rank,
                                                      shuffle=True, seed=seed or 0)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=sampler is None, sampler=sampler,
        drop_last=len(dataset) >= batch_size * (ranks.world if sampler is not None else 1),
        num_workers=workers, persistent_workers=workers > 0, generator=generator,
        worker_init_fn=_seed_worker, pin_memory=pin_memory,
    )
    epoch = 0
    while True:
        if sampler is not None:
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def _seed_worker(worker_id: int) -> None:
    random.seed(torch.initial_seed() % 2**32)
