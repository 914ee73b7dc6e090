"""Worker processes share the evaluation out in units of clips taken from a locked counter."""

from __future__ import annotations

import multiprocessing

import pytest
from torch.utils.data import Dataset, Subset

from avdemo.evaluation.engine import Engine
from avdemo.evaluation.parallel import UNITS_PER_WORKER, UnitCounter, _hands
from avdemo.evaluation.store import ResultsStore


class LabelsOnly(Dataset):
    """A split's clip list: the engine deals clip ids and never opens a clip here."""

    classes = [f"c{k}" for k in range(18)]

    def __len__(self) -> int:
        return 10_000

    def __getitem__(self, index: int):
        raise AssertionError("dealing clips must not load them")


def _engine(per_class: dict[str, int]) -> Engine:
    splits = {split: Subset(LabelsOnly(), list(range(count * 18))) for split, count in per_class.items()}
    return Engine(splits, ResultsStore(), "toy", "cpu", log=lambda *_: None)


@pytest.mark.parametrize("hands", [1, 5, 16, 400])
def test_dealt_units_hold_every_clip_once_each_of_one_split(hands):
    engine = _engine({"test": 6, "test-heldout": 2})
    units = engine.dealt(hands)
    assert all(len(unit.splits) == 1 for unit in units)
    for split in engine.splits:
        mine = [unit.clip_ids(split) for unit in units if split in unit.splits]
        assert len(mine) == min(hands, len(engine.clip_ids(split)))
        assert sorted(clip for clips in mine for clip in clips) == engine.clip_ids(split)


def test_every_unit_holds_a_clip_of_the_other_tables_tier():
    engine = _engine({"test": 20, "test-heldout": 20})
    for workers in (1, 2, 8):
        for other_per_class in (1, 4, None):
            units = engine.dealt(_hands(engine, workers, other_per_class))
            assert len(units) == 2 * UNITS_PER_WORKER * workers
            for unit in units:
                assert unit.narrowed(other_per_class or 20).clip_ids(*unit.splits)
    small = Engine({"test": Subset(LabelsOnly(), list(range(18 * 4)))}, ResultsStore(), "toy", "cpu")
    small.splits["test"].dataset.classes = LabelsOnly.classes[:3]  # 3 classes: the tier of 1 per class is 3 clips
    assert _hands(small, 2, 1) == 3


def _take(path, count, queue):
    counter = UnitCounter(path)
    queue.put([counter.take() for _ in range(count)])


def test_workers_on_one_machine_take_each_unit_exactly_once(tmp_path):
    counter = UnitCounter(tmp_path / "results.jsonl.gz.units")
    counter.reset()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_take, args=(counter.path, 1000, queue)) for _ in range(3)]
    for worker in workers:
        worker.start()
    taken = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join()
    assert sorted(number for numbers in taken for number in numbers) == list(range(3000))
    assert all(numbers == sorted(numbers) for numbers in taken)
    counter.reset()
    assert counter.take() == 0
    counter.remove()
    assert not counter.path.exists()
