"""The evaluation over worker processes: each measures every `count`-th clip into its own
shard of the results store (one thread each), and the shards are merged into the store.
The workers are either spawned by `python -m avdemo.evaluation --workers N` (CPU) or are the
ranks of `torchrun --nproc_per_node N -m avdemo.evaluation` (one GPU each, or several ranks
sharing one GPU), which only meet to start together and to sum their attack steps."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist

from ..zoo import describe, list_models
from .clips import cached_splits, synth_data_version, zoo_clip_format
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
    clip_format = zoo_clip_format([describe(name) for name in list_models()])
    return Engine(cached_splits(per_class, clip_format, tuple(options["splits"])), store,
                  synth_data_version(clip_format), options["device"])


def work(index: int, count: int, options: dict, per_class: int | None, other_per_class: int | None, steps=None) -> int:
    """One worker: its share of the clips, one thread, rows into its own shard of the store
    (a stopped worker's shard is read back, so the same index resumes it); returns its attack
    steps and adds them to `steps` (a shared counter) when given."""
    torch.set_num_threads(1)
    store = ResultsStore(shard_path(options["store"], index), also_read=[options["store"]])
    engine = build_engine(options, per_class, store).shard(index, count)
    evaluate(engine, per_class=per_class, other_per_class=other_per_class, sections=tuple(options["sections"]),
             defenses=options["defenses"], log=lambda line: print(f"[worker {index}] {line}", flush=True))
    if steps is not None:
        with steps.get_lock():
            steps.value += engine.attack_steps
    return engine.attack_steps


def under_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def torchrun_rank(options: dict, per_class: int | None, other_per_class: int | None) -> int | None:
    """This rank's share of the clips under torchrun, on the GPU of its LOCAL_RANK (modulo the
    GPUs there are) when the device is CUDA. Rank 0 first merges the shards a stopped run left;
    returns the attack steps of all ranks on rank 0 once every rank is done, None on the others."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if options["device"].startswith("cuda"):
        options = {**options, "device": f"cuda:{int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()}"}
    dist.init_process_group("gloo")  # a barrier and one sum of counts: gloo serves CPU and GPU ranks alike
    try:
        if rank == 0:
            merge_shards(ResultsStore(options["store"]))
        dist.barrier()
        steps = torch.tensor([work(rank, world, options, per_class, other_per_class)], dtype=torch.float64)
        dist.all_reduce(steps)
        return int(steps.item()) if rank == 0 else None
    finally:
        dist.destroy_process_group()

