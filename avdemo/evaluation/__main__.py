"""Robustness evaluation of the zoo: `python -m avdemo.evaluation [--per-class 4] [--out reports]`
(then `python -m avdemo.evaluation.findings` for docs/RESULTS.md).

Per-clip results go to the results store (`reports/results.jsonl.gz` by default): a stopped
run resumes where it stopped, and a rerun recomputes only what changed (a retrained model has
another SHA-256, so its rows are new). See `avdemo.evaluation.tables` for what is measured.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..data.shards import ShardDataset, first_per_class
from ..data.synth import SynthConfig, split_dir
from ..paths import REPORTS
from .engine import Engine
from .report import write_report
from .store import ResultsStore
from .tables import SECTIONS, evaluate

STORE = REPORTS / "results.jsonl.gz"


def synth_data_version(seed: int = 0, config: SynthConfig = SynthConfig()) -> str:
    """The AV-Synth data version that names clips in the store: generator, bank, format, seed."""
    folder = split_dir("test", seed, config)
    return f"{folder.parent.parent.name}/{folder.parent.name}"


def cached_splits(per_class: int | None, splits=("test", "test-heldout")) -> dict[str, Dataset]:
    """The first `per_class` clips of each class of the cached AV-Synth splits (all with None)."""
    datasets = {split: ShardDataset(split_dir(split, 0, SynthConfig())) for split in splits}
    return {split: dataset if per_class is None else first_per_class(dataset, per_class)
            for split, dataset in datasets.items()}


def merged(old: dict, new: dict) -> dict:
    """`old` with the tables and curves that `new` measured replaced, and both stamps kept:
    the report's stamp says which sections each run wrote."""
    tables = {**old["tables"], **new["tables"]}
    updated = [*old.get("updates", []), {**new["stamp"], "sections": sorted(new["tables"]) + (["curves"] if new["curves"] else [])}]
    return {**old, "protocols": new["protocols"], "tables": {k: tables[k] for k in sorted(tables, key=list(tables).index)},
            "curves": new["curves"] or old["curves"], "updates": updated}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avdemo.evaluation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=None,
                        help="clips per class of each split (default: 4 on CPU; all on GPU)")
    parser.add_argument("--splits", nargs="+", default=["test", "test-heldout"])
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--out", type=Path, default=REPORTS)
    parser.add_argument("--store", type=Path, default=STORE, help="the per-clip results store")
    parser.add_argument("--defenses", nargs="+", default=None, metavar="KEY",
                        help="Table 3's defenses (registry keys; default: every registered defense the zoo ships)")
    parser.add_argument("--update", action="store_true",
                        help="replace only the --sections in the existing report (out/robustness.json), keeping the rest")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    per_class = args.per_class if args.per_class is not None else (None if args.device.startswith("cuda") else 4)
    store = ResultsStore(args.store)
    engine = Engine(cached_splits(per_class, tuple(args.splits)), store, synth_data_version(), args.device)
    report = evaluate(engine, per_class=per_class, sections=tuple(args.sections), defenses=args.defenses)
    store.compact()
    if args.update:
        report = merged(json.loads((args.out / "robustness.json").read_text()), report)
    for path in write_report(report, args.out):
        print(f"  wrote {path}")
    print(f"  results store: {args.store} ({len(store)} rows)")


if __name__ == "__main__":
    main()
