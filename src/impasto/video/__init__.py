"""Video: frames + optical flow + either method (Ruder et al. 2016 for optimization)."""

from .pipeline import FrameProgress, VideoConfig, stylize_video, warping_error

__all__ = ["FrameProgress", "VideoConfig", "stylize_video", "warping_error"]
