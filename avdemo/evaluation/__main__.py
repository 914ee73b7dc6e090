"""Robustness evaluation of the zoo: `python -m avdemo.evaluation [--per-class 20] [--other-per-class 4]`
(then `python -m avdemo.evaluation.findings` for docs/RESULTS.md).

Per-clip results go to the results store (`reports/results.jsonl.gz` by default): a stopped
run resumes where it stopped, and a rerun recomputes only what changed (a retrained model has
another SHA-256, so its rows are new). See `avdemo.evaluation.tables` for what is measured.

On the CPU the work is split over `--workers` processes (one per core, one thread each), which
take units of clips in turn (`avdemo.evaluation.parallel`), each into its own shard of the
store; the shards are then merged and the report is read from the store. A stopped run's
shards are merged on the next start.

On GPUs, the full splits (regenerated from the bank on the machine, not carried):

    python -m avdemo.data splits --frames 4 --size 224
    torchrun --standalone --nproc_per_node N -m avdemo.evaluation

The ranks take units of clips in turn, each into its own shard, on GPU LOCAL_RANK (ranks
beyond the GPUs share them); rank 0 merges the shards and writes the report. Killed (e.g. at
a time limit), the same command resumes from the store and the shards.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from pathlib import Path

import torch

from ..paths import REPORTS
from .report import write_report
from .store import ResultsStore
from .parallel import build_engine, merge_shards, torchrun_rank, under_torchrun, unit_counter, work
from .tables import KEY_PER_CLASS, OTHER_PER_CLASS, SECTIONS, evaluate

STORE = REPORTS / "results.jsonl.gz"


def merged(old: dict, new: dict) -> dict:
    """`old` with the tables and curves that `new` measured replaced, and the stamps kept: each
    update's stamp lists the sections it wrote, and an earlier update keeps only those no later
    run re-measured."""
    tables = {**old["tables"], **new["tables"]}
    sections = sorted(new["tables"]) + (["curves"] if new["curves"] else [])
    earlier = [{**update, "sections": [name for name in update["sections"] if name not in sections]}
               for update in old.get("updates", [])]
    updated = [*(update for update in earlier if update["sections"]), {**new["stamp"], "sections": sections}]
    return {**old, "protocols": new["protocols"], "tables": {k: tables[k] for k in sorted(tables, key=list(tables).index)},
            "curves": new["curves"] or old["curves"], "updates": updated}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avdemo.evaluation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=None,
                        help=f"clips per class of each split for Table 1's ✗AV, the strongest-attack yardstick and "
                             f"localization under attack (default: {KEY_PER_CLASS} on CPU; all on GPU)")
    parser.add_argument("--other-per-class", type=int, default=None,
                        help=f"clips per class for the other tables (default: {OTHER_PER_CLASS} on CPU; all on GPU)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: one per core on CPU, up to 2; one on GPU)")
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
    gpu = args.device.startswith("cuda")
    per_class = args.per_class if args.per_class is not None else (None if gpu else KEY_PER_CLASS)
    other_per_class = args.other_per_class if args.other_per_class is not None else (None if gpu else OTHER_PER_CLASS)
    if per_class is not None and other_per_class is not None:
        other_per_class = min(other_per_class, per_class)
    workers = args.workers or (1 if gpu else min(2, os.cpu_count() or 1))
    started, steps = time.perf_counter(), None
    if under_torchrun():
        steps = torchrun_rank(vars(args), per_class, other_per_class)
        if steps is None:  # not rank 0: its rows are in its shard
            return
        workers = int(os.environ["WORLD_SIZE"])
    store = ResultsStore(args.store)
    moved = merge_shards(store)  # the ranks' shards, or those a stopped run left
    if moved:
        print(f"  merged {moved} rows from the workers' shards")
    engine = build_engine(vars(args), per_class, store)  # before any worker: missing clips stop here, once
    if workers > 1 and steps is None:
        context = multiprocessing.get_context("spawn")
        attack_steps = context.Value("q", 0)
        processes = [context.Process(target=work, args=(index, workers, vars(args), per_class, other_per_class, attack_steps))
                     for index in range(workers)]
        with unit_counter(args.store):
            for process in processes:
                process.start()
            for process in processes:
                process.join()
        merge_shards(store)
        if any(process.exitcode for process in processes):
            raise SystemExit("a worker failed (its rows are kept in the store): see its log above, then run again")
        steps = attack_steps.value
    report = evaluate(engine, per_class=per_class, other_per_class=other_per_class, sections=tuple(args.sections),
                      defenses=args.defenses)
    if steps is not None:  # the workers measured; the report was read from the store
        seconds = time.perf_counter() - started
        report["stamp"].update(seconds=round(seconds, 1), attack_steps_per_second=round(steps / seconds, 2),
                               workers=workers)
    store.compact()
    if args.update:
        report = merged(json.loads((args.out / "robustness.json").read_text()), report)
    for path in write_report(report, args.out):
        print(f"  wrote {path}")
    print(f"  results store: {args.store} ({len(store)} rows)")


if __name__ == "__main__":
    main()
