"""Where the sound comes from in a staged clip, and its sidecar file.

Every AV-Synth example video `<name>.mp4` ships with `<name>.json`: the class, the sounding
object's box per frame, the silent distractors' boxes and classes, the frame times and the
frame size the boxes are in. `write_sidecar` writes it (`avdemo.data.examples`), and
`read_ground_truth` matches it to the frames a decoder picked, by time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class GroundTruth:
    """Per decoded frame: box `(T, 4)` (x0, y0, x1, y1, pixels of the model's frame),
    distractor boxes `(T, D, 4)` and their class names."""

    label: str
    box: np.ndarray
    distractor_box: np.ndarray
    distractor_labels: list[str]


def sidecar_path(video: str | Path) -> Path:
    return Path(video).with_suffix(".json")


def write_sidecar(video: Path, content: dict) -> Path:
    path = sidecar_path(video)
    path.write_text(json.dumps(content, indent=1))
    return path


def read_ground_truth(video: str | Path, frame_times: np.ndarray, frame_size: int) -> GroundTruth | None:
    """The sidecar of `video`, for decoded frames at `frame_times` (seconds) of `frame_size`
    pixels; None when the video has no sidecar."""
    sidecar = sidecar_path(video)
    if not sidecar.is_file():
        return None
    truth = json.loads(sidecar.read_text())
    times = np.array(truth["frame_times"])
    frames = [int(np.argmin(np.abs(times - t))) for t in frame_times]
    scale = frame_size / truth["frame_size"]
    box = np.array(truth["box"], np.float32)[frames] * scale
    distractors = [np.array(d["box"], np.float32)[frames] * scale for d in truth["distractors"]]
    distractor_box = np.stack(distractors, axis=1) if distractors else np.zeros((len(frames), 0, 4), np.float32)
    return GroundTruth(truth["label"], box, distractor_box, [d["label"] for d in truth["distractors"]])
