"""Optical flow for video style transfer: estimation, reliability, warping, files.

Pure Python on numpy / OpenCV; knows nothing of styles. Conventions:

- Images are HxWx3 uint8 RGB (or HxW grey) numpy arrays.
- A flow is HxWx2 float32: channel 0 = u (x), channel 1 = v (y), in pixels. flow(a -> b) maps
  pixel x of frame a to x + w(x) in frame b: a(x) ~ b(x + w(x)).
- Reliability maps are HxW float32 in 0..255 (255 = reliable), as the authors' ``.pgm`` files;
  the weights of the temporal loss are map / 255.
- To warp the stylized frame t-1 onto frame t: ``warp(stylized[t-1], flow(t -> t-1))``, weighted
  by ``consistency_check(flow(t -> t-1), flow(t-1 -> t)) / 255``.

Flows from any other tool can be brought as Middlebury ``.flo`` files (:func:`read_flo`).
User-caused problems (malformed files, size mismatches, unknown methods) raise
:class:`FlowError`.
"""

from flow.chain import compose_flows, fuse_with_chain
from flow.consistency import consistency_check, long_term_weights
from flow.errors import FlowError
from flow.estimators import (DEFAULT_METHOD, FlowEstimator, available_methods, create_estimator,
                             estimate_flow)
from flow.io import flow_file_frames, flow_file_name, read_flo, read_pgm, reliable_file_name, write_flo, write_pgm
from flow.resize import resize_flow, resize_mask
from flow.visualize import flow_to_color
from flow.warp import lands_inside, warp

__all__ = [
    "DEFAULT_METHOD",
    "FlowError",
    "FlowEstimator",
    "available_methods",
    "compose_flows",
    "consistency_check",
    "create_estimator",
    "estimate_flow",
    "flow_file_frames",
    "flow_file_name",
    "flow_to_color",
    "fuse_with_chain",
    "lands_inside",
    "long_term_weights",
    "read_flo",
    "read_pgm",
    "reliable_file_name",
    "resize_flow",
    "resize_mask",
    "warp",
    "write_flo",
    "write_pgm",
]
