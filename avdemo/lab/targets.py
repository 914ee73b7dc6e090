"""Where the targeted map attack should move the map: a silent object of the clip, or a rectangle.

A region is written as text, so the page's click, a typed value and the API speak the same
language: "silent cello" (that object's box in each frame, from the clip's ground truth) or
"x0, y0, x1, y1" (fractions of the frame, for every frame). A click picks the silent object
under it, or else a square around it.
"""

from __future__ import annotations

import numpy as np

from ..data.truth import GroundTruth

SILENT = "silent "
CLICK_SIDE = 0.3  # a clicked point's target square, as a fraction of the frame's side


def silent_objects(truth: GroundTruth | None) -> list[str]:
    """The silent objects a person can aim the map at, as region texts ("silent cello")."""
    return [SILENT + label for label in truth.distractor_labels] if truth is not None else []


def region_at(x: float, y: float, size: int, truth: GroundTruth | None, frame: int = 0) -> str:
    """The region a click at pixel (x, y) of frame `frame` (`size` px square) names: the silent
    object under it, else a square of `CLICK_SIDE` of the frame centred on it (kept inside)."""
    if truth is not None:
        for box, label in zip(truth.distractor_box[frame], truth.distractor_labels):
            if not np.isnan(box).any() and box[0] <= x <= box[2] and box[1] <= y <= box[3]:
                return SILENT + label
    cx = min(max(x / size, CLICK_SIDE / 2), 1 - CLICK_SIDE / 2)
    cy = min(max(y / size, CLICK_SIDE / 2), 1 - CLICK_SIDE / 2)
    return ", ".join(f"{v:.2f}" for v in (cx - CLICK_SIDE / 2, cy - CLICK_SIDE / 2, cx + CLICK_SIDE / 2, cy + CLICK_SIDE / 2))


def resolve_region(text: str, truth: GroundTruth | None, size: int) -> tuple[tuple[tuple[float, float, float, float], ...], str]:
    """The boxes the attack aims at, in fractions of the frame (one per frame for an object, one
    for all for a rectangle), and how to name them ("the silent cello", "the target region").
    Raises ValueError, saying what is accepted, for anything else."""
    text = (text or "").strip()
    if text.startswith(SILENT):
        label = text[len(SILENT):]
        if truth is None or label not in truth.distractor_labels:
            shown = ", ".join(silent_objects(truth)) or "none in this clip"
            raise ValueError(f"no {text} in this clip (its silent objects: {shown}); click on the frame to pick a region")
        boxes = truth.distractor_box[:, truth.distractor_labels.index(label)]
        present = ~np.isnan(boxes).any(axis=1)
        if not present.any():
            raise ValueError(f"the {text} is in none of this clip's {len(boxes)} frames")
        # a frame where the object is hidden keeps the box of the nearest frame that shows it
        nearest = [int(np.flatnonzero(present)[np.abs(np.flatnonzero(present) - i).argmin()]) for i in range(len(boxes))]
        fractions = np.clip(boxes[nearest] / size, 0, 1)
        return tuple(tuple(float(v) for v in box) for box in fractions), f"the {text}"
    try:
        values = [float(v) for v in text.replace("(", "").replace(")", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise ValueError("the map-target attack needs a target region: click on the frame, or write a silent object "
                         "(\"silent cello\") or a rectangle \"x0, y0, x1, y1\" in fractions of the frame")
    x0, y0, x1, y1 = values
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise ValueError(f"a target rectangle is x0, y0, x1, y1 with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, got {text!r}")
    return ((x0, y0, x1, y1),), "the target region"
