"""The per-clip results store: one row per (model and its weights' SHA-256, attack, objective,
budget, modality, data version, split, clip), so that worst cases, paired comparisons and
intervals are computed from rows instead of re-running attacks.

A row holds the clip's label, the clean and attacked predictions, whether each is right, the
probability of the true class under attack and, for models with a localization map, per frame
the map's peak `[x, y]`, whether it hits the sounding object or a silent distractor, and the
cIoU. Clean rows have attack, objective, budget and modality "none".

On disk it is gzip-compressed JSON lines; each `add` appends one gzip member (gzip readers
take concatenated members as one stream), so a long evaluation can be stopped and resumed:
rows already present are never recomputed. A process killed while appending leaves a truncated
last member; reading keeps every whole row before it and rewrites the store without the broken
tail, so that later members stay readable (the lost rows are simply measured again). A later
row with the same key replaces an earlier one. A path of None keeps the store in memory (model
cards, tests).
"""

from __future__ import annotations

import gzip
import json
import sys
import zlib
from collections.abc import Iterable
from pathlib import Path

KEY_FIELDS = ("model", "sha256", "attack", "objective", "budget", "modality", "data", "split", "clip")
CLEAN = "none"


def row_key(row: dict) -> tuple:
    return tuple(row[field] for field in KEY_FIELDS)


def read_rows(path: Path) -> tuple[list[dict], bool]:
    """The whole rows of the store file at `path`, and whether the file ended cleanly (False:
    a truncated or corrupt tail, whose rows are dropped, saying so on stderr)."""
    rows = []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                if not line.endswith("\n"):
                    break
                rows.append(json.loads(line))
            else:
                return rows, True
    except (EOFError, zlib.error, gzip.BadGzipFile):
        pass
    print(f"{path}: a truncated tail (an interrupted write) was dropped after {len(rows)} whole rows; "
          "its rows will be measured again", file=sys.stderr)
    return rows, False


class ResultsStore:
    """Rows read from `path` (and from `also_read`, never written: a worker's view of the main
    store); new rows are appended to `path`."""

    def __init__(self, path: Path | None = None, also_read: Iterable[Path] = ()):
        self.path = Path(path) if path is not None else None
        self._rows: dict[tuple, dict] = {}
        for source in map(Path, [*also_read, *([self.path] if self.path is not None else [])]):
            if source.is_file():
                rows, intact = read_rows(source)
                self._rows.update((row_key(row), row) for row in rows)
                if not intact and source == self.path:
                    _write(self.path, rows, "wt")  # without the broken tail, so later appends stay readable

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, **key) -> dict | None:
        return self._rows.get(tuple(key[field] for field in KEY_FIELDS))

    def add(self, rows: Iterable[dict]) -> None:
        rows = list(rows)
        for row in rows:
            missing = set(KEY_FIELDS) - set(row)
            if missing:
                raise ValueError(f"a results row needs {sorted(missing)}")
            self._rows[row_key(row)] = row
        if self.path is not None and rows:
            _write(self.path, rows, "at")

    def rows(self, **match) -> list[dict]:
        """Rows whose fields equal every given value, in insertion order."""
        return [row for row in self._rows.values() if all(row.get(k) == v for k, v in match.items())]

    def compact(self) -> None:
        """Rewrite the file with one row per key (drops replaced rows and gzip members);
        rows read from `also_read` are written too."""
        if self.path is not None:
            _write(self.path, self._rows.values(), "wt")


def _write(path: Path, rows: Iterable[dict], mode: str) -> None:
    """Rows as one gzip member: appended (`mode` "at") or replacing the file ("wt")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, mode, encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)
