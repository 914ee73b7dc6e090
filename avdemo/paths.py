"""Where the project keeps what it ships and what it writes: the one place that knows.

Shipped (tracked): `checkpoints/` (the model zoo), `configs/zoo/` (its recipes), `reports/`
(evaluation reports and the per-clip results store), `docs/` (RESULTS.md), `assets/examples/`.
Written locally (ignored): `runs/` (training runs). Caches of generated data live outside the
repository, in `avdemo.data.cache.cache_dir()`.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "checkpoints"
ZOO_CONFIGS = ROOT / "configs" / "zoo"
REPORTS = ROOT / "reports"
DOCS = ROOT / "docs"
RUNS = ROOT / "runs"
EXAMPLES = ROOT / "assets" / "examples"
