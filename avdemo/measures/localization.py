"""Sound-source localization maps and their scores against ground truth.

A map says, per cell of the last visual feature map, how much that place matches the
sound of its segment: the cosine of the learned cell-level audio-visual embeddings where the
network has them (`models.correspondence`; the §4.5 attention is their softmax), else the
§4.5 model's audio-guided attention, else the cosine similarity between the segment's audio
feature and each cell's visual feature (the usual heatmap of localization papers). Maps are
upsampled to the frame and scored against the sounding object's box: the pointing game (the
map's maximum falls inside the box), cIoU (LVS: the map thresholded at its median), the AUC
of cIoU over thresholds 0:0.05:1, and whether the maximum lands on a silent distractor.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..models import AVOutput, ModelConfig
from ..models.correspondence import cell_similarity

CIOU_THRESHOLDS = np.linspace(0, 1, 21)
# What a map is, by the model part that makes it (the order `localization_maps` picks them in).
MAP_KINDS = {
    "correspondence": "learned cell-level audio-visual correspondence: cosine of each segment's audio embedding "
                      "and each cell's embedding, trained for localization",
    "attention": "audio-guided attention weights of §4.5 (softmax over cells of f_a · f_v)",
    "feature cosine": "cosine of each segment's audio feature and each cell's visual feature; nothing trained it "
                      "to localize",
}


def map_kind(config: ModelConfig) -> str | None:
    """Which map `localization_maps` draws for a network of this config (a key of MAP_KINDS),
    None for a unimodal network (no map)."""
    if config.kind != "av":
        return None
    return "correspondence" if config.correspondence else "attention" if config.attention else "feature cosine"


def localization_maps(output: AVOutput) -> torch.Tensor:
    """Per-frame maps `(B, T, h, w)` in [0, 1] (min-max normalised per frame).

    The correspondence cosine where the model has one, else attention, else cos(f_a^t, f_v^i)
    per cell with each segment's audio. Needs both modalities.
    """
    if output.cell_embedding is not None:
        maps = cell_similarity(output.audio_embedding, output.cell_embedding)
    elif output.attention is not None:
        maps = output.attention
    elif output.audio_segments is not None and output.visual_map is not None:
        audio = F.normalize(output.audio_segments, dim=2)[..., None, None]
        maps = (F.normalize(output.visual_map, dim=2) * audio).sum(dim=2)
    else:
        raise ValueError("localization needs a model with both an audio feature and a visual feature map")
    flat = maps.flatten(2)
    low, high = flat.min(dim=2, keepdim=True).values, flat.max(dim=2, keepdim=True).values
    return ((flat - low) / (high - low).clamp_min(1e-12)).view_as(maps)


def upsample(maps: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear upsampling of `(B, T, h, w)` maps to `(B, T, size, size)`."""
    batch, steps = maps.shape[:2]
    resized = F.interpolate(maps.flatten(0, 1)[:, None].float(), size=(size, size), mode="bilinear", align_corners=False)
    return resized[:, 0].unflatten(0, (batch, steps))


def _inside(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """points `(N, 2)` as (x, y) pixel centres, boxes `(N, 4)` (x0, y0, x1, y1); NaN boxes -> False."""
    x, y = points[:, 0] + 0.5, points[:, 1] + 0.5
    with np.errstate(invalid="ignore"):
        return (x >= boxes[:, 0]) & (x <= boxes[:, 2]) & (y >= boxes[:, 1]) & (y <= boxes[:, 3])


def peaks(heatmaps: np.ndarray) -> np.ndarray:
    """(x, y) of each map's maximum: heatmaps `(N, H, W)` -> `(N, 2)`."""
    flat = heatmaps.reshape(len(heatmaps), -1).argmax(axis=1)
    return np.stack([flat % heatmaps.shape[2], flat // heatmaps.shape[2]], axis=1)


def pointing_game(heatmaps: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Hit per map `(N,)` bool: the maximum of heatmaps `(N, H, W)` lies in its box `(N, 4)`."""
    return _inside(peaks(heatmaps), boxes)


def distractor_hits(heatmaps: np.ndarray, distractor_boxes: np.ndarray) -> np.ndarray:
    """Per map `(N,)` bool: the maximum lies on a silent distractor (boxes `(N, D, 4)`, NaN if absent)."""
    points = peaks(heatmaps)
    return np.stack([_inside(points, distractor_boxes[:, d]) for d in range(distractor_boxes.shape[1])], 1).any(1)


def map_attack_success(attack: str, heatmaps: np.ndarray, boxes: np.ndarray, class_changed: bool | np.ndarray) -> np.ndarray:
    """Per map `(N,)` bool: did a map attack succeed on this frame? heatmaps `(N, H, W)`; boxes
    `(N, 4)` in pixels: the target region for `map-target` (the peak inside it), the sounding
    object's box for `map-away` (the peak outside it) and `class-only` (the peak still inside it
    and the class changed, `class_changed` per map or for all)."""
    inside = pointing_game(heatmaps, boxes)
    if attack == "map-target":
        return inside
    if attack == "map-away":
        return ~inside
    if attack == "class-only":
        return inside & np.broadcast_to(np.asarray(class_changed, bool), inside.shape)
    raise ValueError(f"not a map attack: {attack!r}; choose map-target, map-away or class-only")


def box_mask(boxes: np.ndarray, size: int) -> np.ndarray:
    """Binary masks `(N, size, size)` of boxes `(N, 4)`."""
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    b = boxes[:, :, None, None]
    return (xs >= b[:, 0]) & (xs <= b[:, 2]) & (ys >= b[:, 1]) & (ys <= b[:, 3])


def ciou(heatmaps: np.ndarray, ground_truth: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """cIoU per map `(N,)` (LVS): sum(pred & gt) / (sum(gt) + sum(pred & ~gt)), pred = map above
    `threshold`, by default above its own median. heatmaps and ground_truth `(N, H, W)`."""
    if threshold is None:
        cut = np.median(heatmaps.reshape(len(heatmaps), -1), axis=1)[:, None, None]
    else:
        cut = threshold
    predicted = heatmaps > cut
    gt = ground_truth.astype(bool)
    intersection = (predicted & gt).sum(axis=(1, 2))
    return intersection / np.maximum(gt.sum(axis=(1, 2)) + (predicted & ~gt).sum(axis=(1, 2)), 1)


def ciou_auc(cious: np.ndarray) -> float:
    """Area under the success-rate curve: share of maps with cIoU >= t, for t in 0:0.05:1."""
    success = np.array([(cious >= t).mean() for t in CIOU_THRESHOLDS])
    return float(np.trapezoid(success, CIOU_THRESHOLDS))
