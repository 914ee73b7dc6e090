"""The per-clip results store survives a process killed while it appended rows."""

from __future__ import annotations

import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avdemo.evaluation.parallel import merge_shards
from avdemo.evaluation.store import KEY_FIELDS, ResultsStore, read_rows


def _row(clip: int, correct: bool = True) -> dict:
    key = dict.fromkeys(KEY_FIELDS, "x")
    return {**key, "clip": clip, "correct": correct}


def _clips(store: ResultsStore) -> list[int]:
    return sorted(row["clip"] for row in store.rows())


def _two_members(path) -> int:
    """Rows 0-2 in one gzip member and 3-5 in a second; returns the first member's size in bytes."""
    ResultsStore(path).add([_row(clip) for clip in range(3)])
    first = path.stat().st_size
    ResultsStore(path).add([_row(clip) for clip in range(3, 6)])
    return first


def _cut_in_second_member(path) -> bytes:
    """Two members cut in the middle of the second (past its header, which holds the file name),
    as a kill while appending leaves them; returns the bytes."""
    first = _two_members(path)
    data = path.read_bytes()
    path.write_bytes(data[:(first + len(data)) // 2])
    return path.read_bytes()


def test_rows_round_trip_and_a_later_row_replaces_an_earlier_one(tmp_path):
    path = tmp_path / "results.jsonl.gz"
    ResultsStore(path).add([_row(0), _row(1)])
    ResultsStore(path).add([_row(1, correct=False)])
    store = ResultsStore(path)
    assert _clips(store) == [0, 1]
    assert store.get(**{**_row(1), "clip": 1})["correct"] is False
    store.compact()
    assert read_rows(path) == (store.rows(), True)


def test_a_truncated_last_member_keeps_the_whole_rows_and_later_appends_stay_readable(tmp_path, capsys):
    path = tmp_path / "results.jsonl.gz"
    _cut_in_second_member(path)
    store = ResultsStore(path)
    assert _clips(store) == [0, 1, 2]
    assert "truncated tail" in capsys.readouterr().err
    store.add([_row(9)])
    assert _clips(ResultsStore(path)) == [0, 1, 2, 9]  # the new member is not lost behind the broken one
    assert read_rows(path)[1]


def test_a_worker_reading_a_broken_main_store_leaves_that_file_alone(tmp_path):
    main = tmp_path / "results.jsonl.gz"
    broken = _cut_in_second_member(main)
    worker = ResultsStore(tmp_path / "results.jsonl.gz.shard0", also_read=[main])
    assert _clips(worker) == [0, 1, 2]
    assert main.read_bytes() == broken


def test_merging_a_killed_workers_shard_moves_its_whole_rows(tmp_path):
    main = tmp_path / "results.jsonl.gz"
    ResultsStore(main).add([_row(100)])
    shard = tmp_path / "results.jsonl.gz.shard1"
    _cut_in_second_member(shard)
    store = ResultsStore(main)
    assert merge_shards(store) == 3
    assert not shard.exists()
    assert _clips(ResultsStore(main)) == [0, 1, 2, 100]


def test_a_corrupt_whole_line_is_an_error_not_a_silent_loss(tmp_path):
    path = tmp_path / "results.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write('{"not json\n')
    with pytest.raises(ValueError):
        ResultsStore(path)


@settings(max_examples=60, deadline=None)
@given(cut=st.floats(0, 1, exclude_max=True))
def test_a_store_cut_anywhere_reads_as_a_prefix_of_its_rows(tmp_path_factory, cut):
    path = tmp_path_factory.mktemp("cut") / "results.jsonl.gz"
    _two_members(path)
    data = path.read_bytes()
    path.write_bytes(data[:int(cut * len(data))])
    clips = [row["clip"] for row in read_rows(path)[0]]
    assert clips == list(range(len(clips)))
