"""The evaluation over worker processes: each split's clips are dealt into units of work
(`Engine.dealt`), each worker takes the next unit from a shared counter until none is left and
measures it into its own shard of the results store (one thread each), and the shards are
merged into the store. Taking units in turn balances the work: how long a clip takes depends
on how many models it survives, so a fixed share per worker left one idle for a third of a run.
The workers are either spawned by `python -m avdemo.evaluation --workers N` (CPU) or are the
ranks of `torchrun --standalone --nproc_per_node N -m avdemo.evaluation` (one GPU each, or
several ranks sharing one GPU), which meet only to start together and to sum their attack steps.
The counter is a locked file next to the store, so every worker must run on one machine."""

from __future__ import annotations

from contextlib import contextmanager
import fcntl
import os
from pathlib import Path
import time

import torch
import torch.distributed as dist

from ..zoo import describe, list_models
from .clips import cached_splits, synth_data_version, zoo_clip_format
from .engine import Engine
from .store import ResultsStore, read_rows
from .tables import evaluate


def shard_path(store: Path, index: int) -> Path:
    return store.with_name(f"{store.name}.shard{index}")


class UnitCounter:
    """A number in a file that processes on one machine take in turn under an exclusive lock:
    each `take` returns the next unit of work, whichever worker asks."""

    def __init__(self, path: Path):
        self.path = path

    def reset(self) -> None:
        self.path.write_text("0")

    def take(self) -> int:
        with open(self.path, "r+") as file:
            fcntl.flock(file, fcntl.LOCK_EX)  # released when the file closes
            number = int(file.read())
            file.seek(0)
            file.write(str(number + 1))
            file.truncate()
        return number

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


@contextmanager
def unit_counter(store: Path, owner: bool = True):
    """The counter one run's workers take units from, next to `store`: its owner (the launching
    process, or rank 0) starts it at 0 and removes it once every worker is done."""
    counter = UnitCounter(store.with_name(f"{store.name}.units"))
    if owner:
        counter.reset()
    try:
        yield counter
    finally:
        if owner:
            counter.remove()


UNITS_PER_WORKER = 2
"""Units of each split per worker. More units balance the workers better, but split the clips
a run adds into smaller batches: at 16 units per split, a run adding one clip per class gave
each unit one or two new clips, and 2 workers ran at 14 attack steps/s each against 17 with
batches of nine (each unit also costs about 5 s of lookups)."""


def merge_shards(store: ResultsStore) -> int:
    """Move the rows of every worker shard next to `store` into it; returns how many rows moved."""
    moved = 0
    for shard in sorted(store.path.parent.glob(f"{store.path.name}.shard*")):
        rows, _ = read_rows(shard)  # a killed worker's truncated tail is dropped: those rows are measured again
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
    """One worker: takes units of clips until none is left and measures each with one thread,
    rows into its own shard of the store (a stopped worker's shard is merged on the next start,
    and its units come out of the store then); returns its attack steps and adds them to `steps`
    (a shared counter) when given. `count`: the workers."""
    torch.set_num_threads(1)
    store = ResultsStore(shard_path(options["store"], index), also_read=[options["store"]])
    engine = build_engine(options, per_class, store)
    units = engine.dealt(_hands(engine, count, other_per_class))
    with unit_counter(options["store"], owner=False) as counter:
        while (taken := counter.take()) < len(units):
            started, before, unit = time.perf_counter(), engine.attack_steps, units[taken]
            evaluate(unit, per_class=per_class, other_per_class=other_per_class, sections=tuple(options["sections"]),
                     defenses=options["defenses"], log=lambda line: None)
            split, = unit.splits
            print(f"[worker {index + 1}/{count}] unit {taken + 1}/{len(units)}: {len(unit.clip_ids(split))} clips of "
                  f"{split}, {engine.attack_steps - before} attack steps in {time.perf_counter() - started:.0f} s",
                  flush=True)
    if steps is not None:
        with steps.get_lock():
            steps.value += engine.attack_steps
    return engine.attack_steps


def _hands(engine: Engine, workers: int, other_per_class: int | None) -> int:
    """UNITS_PER_WORKER x workers, or fewer so that every unit holds a clip of the other
    tables' tier (the first clips of each split), which each unit's evaluation reports on."""
    hands = UNITS_PER_WORKER * workers
    if other_per_class is None:
        return hands
    other = engine.narrowed(other_per_class)
    return max(1, min(hands, *(len(other.clip_ids(split)) for split in other.splits)))


def under_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def torchrun_rank(options: dict, per_class: int | None, other_per_class: int | None) -> int | None:
    """This rank's units of clips under torchrun, on the GPU of its LOCAL_RANK (modulo the GPUs
    there are) when the device is CUDA. Rank 0 first merges the shards a stopped run left and
    resets the unit counter; returns the attack steps of all ranks on rank 0 once every rank is
    done, None on the others."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if options["device"].startswith("cuda"):
        options = {**options, "device": f"cuda:{int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()}"}
    dist.init_process_group("gloo")  # a barrier and one sum of counts: gloo serves CPU and GPU ranks alike
    try:
        if rank == 0:
            merge_shards(ResultsStore(options["store"]))
        with unit_counter(options["store"], owner=rank == 0):
            dist.barrier()  # the counter is at 0 before any rank takes a unit
            steps = torch.tensor([work(rank, world, options, per_class, other_per_class)], dtype=torch.float64)
            dist.all_reduce(steps)  # every rank is done before rank 0 removes the counter
        return int(steps.item()) if rank == 0 else None
    finally:
        dist.destroy_process_group()

