"""The evaluation over worker processes: each measures every `count`-th clip into its own
shard of the results store (one thread each), and the shards are merged into the store."""

from __future__ import annotations

from pathlib import Path

import torch

from ..zoo import describe, list_models
from .engine import Engine
from .store import ResultsStore
from .tables import evaluate


def shard_path(store: Path, index: int) -> Path:
    return store.with_name(f"{store.name}.shard{index}")


def merge_shards(store: ResultsStore) -> int:
    """Move the rows of every worker shard next to `store` into it; returns how many rows moved."""
    moved = 0
    for shard in sorted(store.path.parent.glob(f"{store.path.name}.shard*")):
        rows = list(ResultsStore(shard).rows())
        store.add(rows)
        shard.unlink()
        moved += len(rows)
    return moved


def build_engine(options: dict, per_class: int | None, store: ResultsStore) -> Engine:
    """The engine of `python -m avdemo.evaluation`'s options (splits, device) on `per_class` clips per class."""
    from .__main__ import cached_splits, synth_data_version, zoo_clip_format

    clip_format = zoo_clip_format([describe(name) for name in list_models()])
    return Engine(cached_splits(per_class, clip_format, tuple(options["splits"])), store,
                  synth_data_version(clip_format), options["device"])


def work(index: int, count: int, options: dict, per_class: int | None, other_per_class: int | None, steps=None) -> None:
    """One worker: its share of the clips, one thread, rows into its own shard of the store;
    adds its attack steps to `steps` (a shared counter) when given."""
    torch.set_num_threads(1)
    store = ResultsStore(shard_path(options["store"], index), also_read=[options["store"]])
    engine = build_engine(options, per_class, store).shard(index, count)
    evaluate(engine, per_class=per_class, other_per_class=other_per_class, sections=tuple(options["sections"]),
             defenses=options["defenses"], log=lambda line: print(f"[worker {index}] {line}", flush=True))
    if steps is not None:
        with steps.get_lock():
            steps.value += engine.attack_steps
