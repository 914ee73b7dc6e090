"""Clips on disk: a split is a folder of shards plus `index.json`.

A shard is a folder of `.npy` arrays (memory-mapped when read, so that random access during
training reads only the clips it needs) holding up to `SHARD_SIZE` clips with a leading clip
axis:
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
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

SHARD_SIZE = 256
INDEX = "index.json"
FORMAT_VERSION = 2


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
    for old in root.glob("shard-*"):
        shutil.rmtree(old) if old.is_dir() else old.unlink()
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
    name = f"shard-{number:05d}"
    (root / name).mkdir()
    for key, array in _pack(records).items():
        np.save(root / name / f"{key}.npy", array)
    return {"file": name, "count": len(records)}


def read_index(root: str | Path) -> dict:
    path = Path(root) / INDEX
    if not path.is_file():
        raise FileNotFoundError(f"no clips at {root} (missing {INDEX})")
    index = json.loads(path.read_text())
    if index.get("format") != FORMAT_VERSION:
        raise ValueError(f"the clips at {root} are in format {index.get('format')}, this code reads {FORMAT_VERSION}: "
                         "generate them again")
    return index


class ShardDataset(Dataset):
    """A split on disk as a map-style dataset of `to_sample` dicts (arrays memory-mapped)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.index = read_index(self.root)
        self.classes: list[str] = self.index["classes"]
        counts = [shard["count"] for shard in self.index["shards"]]
        self._starts = np.cumsum([0] + counts)
        self._shards: dict[int, dict[str, np.ndarray]] = {}

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _shard(self, number: int) -> dict[str, np.ndarray]:
        if number not in self._shards:
            folder = self.root / self.index["shards"][number]["file"]
            self._shards[number] = {path.stem: np.load(path, mmap_mode="r") for path in sorted(folder.glob("*.npy"))}
        return self._shards[number]

    def record(self, item: int) -> dict[str, np.ndarray]:
        """The stored arrays of one clip, unconverted."""
        if not 0 <= item < len(self):
            raise IndexError(item)
        number = int(np.searchsorted(self._starts, item, side="right") - 1)
        arrays = self._shard(number)
        return {key: np.array(value[item - self._starts[number]]) for key, value in arrays.items()}

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


def first_per_class(dataset: Dataset, per_class: int) -> Subset:
    """The first clips of a split: AV-Synth labels cycle through the classes, so a prefix of
    `per_class` times the class count is a fixed, balanced subset."""
    return Subset(dataset, range(min(len(dataset), per_class * len(dataset.classes))))
