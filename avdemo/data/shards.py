"""Clips on disk: a split is a folder of `.npz` shards plus `index.json`.

Each shard holds up to `SHARD_SIZE` clips as arrays with a leading clip axis:
- `frames` uint8 `(n, T, S, S, 3)` RGB; `waveform` int16 `(n, L)` (waveform x 32767);
- `label` int64 `(n,)`;
- optional ground truth (AV-Synth): `box` float32 `(n, T, 4)` as (x0, y0, x1, y1) in pixels of
  the sounding object, `mask` uint8 `(n, T, S * S / 8)` its bit-packed mask,
  `distractor_box` float32 `(n, T, D, 4)` (NaN where absent), `distractor_label` int64 `(n, D)`
  (-1 where absent).
`index.json` records the classes, the clip format, the shard files and where the clips came
from (`source`), so a split can be checked and rebuilt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

SHARD_SIZE = 256
INDEX = "index.json"
FORMAT_VERSION = 1


@dataclass
class ClipRecord:
    """One clip as stored: frames `(T, S, S, 3)` uint8, waveform `(L,)` float32 in [-1, 1],
    label, and optional ground truth (see the module docstring for shapes)."""

    frames: np.ndarray
    waveform: np.ndarray
    label: int
    box: np.ndarray | None = None
    mask: np.ndarray | None = None
    distractor_box: np.ndarray | None = None
    distractor_label: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def to_sample(record: ClipRecord) -> dict[str, torch.Tensor | int]:
    """A clip as model-ready tensors: `waveform` float32 `(L,)` in [-1, 1], `frames` float32
    `(T, 3, S, S)` in [0, 1], `label`, and where known `box` `(T, 4)`, `mask` bool `(T, S, S)`,
    `distractor_box` `(T, D, 4)`, `distractor_label` `(D,)`."""
    sample = {
        "waveform": torch.from_numpy(np.ascontiguousarray(record.waveform, dtype=np.float32)),
        "frames": torch.from_numpy(np.ascontiguousarray(record.frames)).permute(0, 3, 1, 2).float().div(255),
        "label": int(record.label),
    }
    if record.box is not None:
        sample["box"] = torch.from_numpy(np.asarray(record.box, np.float32))
        sample["mask"] = torch.from_numpy(np.asarray(record.mask, bool))
        sample["distractor_box"] = torch.from_numpy(np.asarray(record.distractor_box, np.float32))
        sample["distractor_label"] = torch.from_numpy(np.asarray(record.distractor_label, np.int64))
    return sample


def _pack(records: list[ClipRecord]) -> dict[str, np.ndarray]:
    arrays = {
        "frames": np.stack([r.frames for r in records]).astype(np.uint8),
        "waveform": np.stack([np.round(np.clip(r.waveform, -1, 1) * 32767) for r in records]).astype(np.int16),
        "label": np.array([r.label for r in records], dtype=np.int64),
    }
    if records[0].box is not None:
        arrays["box"] = np.stack([r.box for r in records]).astype(np.float32)
        arrays["mask"] = np.stack([np.packbits(r.mask.reshape(r.mask.shape[0], -1), axis=1) for r in records])
        arrays["distractor_box"] = np.stack([r.distractor_box for r in records]).astype(np.float32)
        arrays["distractor_label"] = np.stack([r.distractor_label for r in records]).astype(np.int64)
    return arrays


def write_split(root: str | Path, records: Iterable[ClipRecord], classes: list[str], source: dict) -> Path:
    """Write clips to `root` as shards + `index.json`; returns `root`. Existing shards are replaced."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("shard-*.npz"):
        old.unlink()
    shards, batch, count, clip_format = [], [], 0, None
    for record in records:
        if clip_format is None:
            steps, size = record.frames.shape[0], record.frames.shape[1]
            clip_format = {"frames": steps, "size": size, "num_samples": len(record.waveform)}
        batch.append(record)
        if len(batch) == SHARD_SIZE:
            shards.append(_write_shard(root, len(shards), batch))
            count += len(batch)
            batch = []
    if batch:
        shards.append(_write_shard(root, len(shards), batch))
        count += len(batch)
    if not count:
        raise ValueError("no clips to write")
    index = {"format": FORMAT_VERSION, "classes": classes, "count": count, "shards": shards, "source": source,
             **clip_format}
    (root / INDEX).write_text(json.dumps(index, indent=1))
    return root


def _write_shard(root: Path, number: int, records: list[ClipRecord]) -> dict:
    name = f"shard-{number:05d}.npz"
    np.savez(root / name, **_pack(records))
    return {"file": name, "count": len(records)}


def read_index(root: str | Path) -> dict:
    path = Path(root) / INDEX
    if not path.is_file():
        raise FileNotFoundError(f"no clips at {root} (missing {INDEX})")
    return json.loads(path.read_text())


class ShardDataset(Dataset):
    """A split on disk as a map-style dataset of `to_sample` dicts. One shard is kept in
    memory at a time (per worker)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.index = read_index(self.root)
        self.classes: list[str] = self.index["classes"]
        counts = [shard["count"] for shard in self.index["shards"]]
        self._starts = np.cumsum([0] + counts)
        self._cached: tuple[int, dict[str, np.ndarray]] | None = None

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _shard(self, number: int) -> dict[str, np.ndarray]:
        if self._cached is None or self._cached[0] != number:
            with np.load(self.root / self.index["shards"][number]["file"]) as data:
                self._cached = (number, {key: data[key] for key in data.files})
        return self._cached[1]

    def record(self, item: int) -> dict[str, np.ndarray]:
        """The stored arrays of one clip, unconverted."""
        if not 0 <= item < len(self):
            raise IndexError(item)
        number = int(np.searchsorted(self._starts, item, side="right") - 1)
        arrays = self._shard(number)
        return {key: value[item - self._starts[number]] for key, value in arrays.items()}

    def clip(self, item: int) -> ClipRecord:
        """One clip as a `ClipRecord` (waveform back in [-1, 1], mask unpacked)."""
        stored = self.record(item)
        record = ClipRecord(stored["frames"], stored["waveform"].astype(np.float32) / 32767, int(stored["label"]))
        if "box" in stored:
            size = self.index["size"]
            mask = np.unpackbits(stored["mask"], axis=1, count=size * size).reshape(-1, size, size)
            record.box, record.mask = stored["box"], mask.astype(bool)
            record.distractor_box, record.distractor_label = stored["distractor_box"], stored["distractor_label"]
        return record

    def __getitem__(self, item: int) -> dict[str, torch.Tensor | int]:
        return to_sample(self.clip(item))

    def __iter__(self) -> Iterator[dict]:
        return (self[i] for i in range(len(self)))
