"""Optical flow, warping, and where a flow can be trusted (Ruder et al. 2016, section 3.2).

Flow is OpenCV's DIS (Kroeger et al. 2016), which runs in milliseconds per frame on a CPU where
the paper's DeepMatching + EpicFlow took minutes. A flow field is (1, 2, H, W) in pixels: for each
pixel of the *target* frame, where it comes from in the *source* frame (``warp(source, flow)``
lines the source up with the target).

Reliability follows the paper: a pixel is unreliable where the forward-backward check fails,
|w + w^|^2 > 0.01 (|w|^2 + |w^|^2) + 0.5 (a disocclusion), or on a motion boundary,
|grad u|^2 + |grad v|^2 > 0.01 |w|^2 + 0.002.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .color import luminance

PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


def _grey(image: Tensor) -> np.ndarray:
    y = luminance(image)[0, 0]
    return (y.clamp(0, 1) * 255).round().byte().cpu().numpy()


def dis_flow(target: Tensor, source: Tensor, preset: str = "medium") -> Tensor:
    """Flow from ``target`` to ``source``: (1, 2, H, W), so that ``warp(source, flow)`` ~ target."""
    from ..runtime import require

    cv2 = require("cv2", "video")
    dis = cv2.DISOpticalFlow_create(PRESETS[preset])
    flow = dis.calc(_grey(target), _grey(source), None)  # (H, W, 2): target pixel -> source pixel
    return torch.from_numpy(flow).permute(2, 0, 1).unsqueeze(0).float()


def warp(image: Tensor, flow: Tensor) -> Tensor:
    """Sample ``image`` at each pixel's position plus ``flow`` (bilinear, borders clamped)."""
    _, _, h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=flow.dtype), torch.arange(w, dtype=flow.dtype), indexing="ij")
    x = xs + flow[0, 0]
    y = ys + flow[0, 1]
    grid = torch.stack([2 * x / max(w - 1, 1) - 1, 2 * y / max(h - 1, 1) - 1], -1)[None]
    return F.grid_sample(image, grid.to(image), mode="bilinear", padding_mode="border", align_corners=True)


def reliability(forward: Tensor, backward: Tensor) -> Tensor:
    """(1, 1, H, W) weights: 1 where ``forward`` (target -> source) can be trusted, 0 elsewhere.

    ``backward`` is the flow the other way (source -> target), used for the consistency check.
    """
    back_at = warp(backward, forward)  # the backward flow, looked up where each target pixel lands
    w2 = forward.square().sum(1, keepdim=True)
    b2 = back_at.square().sum(1, keepdim=True)
    inconsistent = (forward + back_at).square().sum(1, keepdim=True) > 0.01 * (w2 + b2) + 0.5
    du = torch.gradient(forward[0, 0], dim=(0, 1))
    dv = torch.gradient(forward[0, 1], dim=(0, 1))
    grad2 = (du[0].square() + du[1].square() + dv[0].square() + dv[1].square())[None, None]
    boundary = grad2 > 0.01 * w2 + 0.002
    return (~(inconsistent | boundary)).float()


def reliable_flow(target: Tensor, source: Tensor, preset: str = "medium") -> tuple[Tensor, Tensor]:
    """(flow from ``target`` to ``source``, its reliability): both directions of DIS, then the checks."""
    forward = dis_flow(target, source, preset)
    return forward, reliability(forward, dis_flow(source, target, preset))


def blend_along_flow(out: Tensor, content: Tensor, history: Sequence[tuple[Tensor, Tensor]], blend: float,
                     preset: str = "medium") -> Tensor:
    """A one-pass method's frame ``out`` blended with the previous output warped onto this frame,
    by ``blend`` times the flow's reliability (the temporal consistency of the fast models and the
    universal method); ``history`` holds the earlier (content, output) pairs, newest first.
    Clamped to [0, 1]."""
    if history and blend > 0:
        earlier_content, earlier_out = history[0]
        fwd, c = reliable_flow(content, earlier_content, preset)
        keep = blend * c
        out = keep * warp(earlier_out, fwd) + (1 - keep) * out
    return out.clamp(0, 1)


def warped_history(content: Tensor, history: Sequence[tuple[Tensor, Tensor]], long_term: Sequence[int],
                   preset: str = "medium") -> tuple[list[Tensor], list[Tensor]]:
    """The earlier outputs ``long_term`` frames back (1 = the previous), warped onto ``content``,
    with their long-term weights (Ruder et al., eq. 8: each pixel is held to the nearest earlier
    frame where the flow is reliable, not counted twice)."""
    warped, weights = [], []
    covered = torch.zeros(1, 1, *content.shape[-2:])
    for j in sorted(long_term):
        if j > len(history):
            break
        earlier_content, earlier_out = history[j - 1]
        fwd, c = reliable_flow(content, earlier_content, preset)
        weights.append((c - covered).clamp_min(0))
        covered = covered + weights[-1]
        warped.append(warp(earlier_out, fwd))
    return warped, weights
