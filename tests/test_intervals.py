"""Wilson intervals and the "in most clips" verdict drawn from them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from avdemo.evaluation.intervals import most_verdict, wilson_interval


def test_known_wilson_intervals():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(30, 30)[1] == 1.0 and wilson_interval(30, 30)[0] == pytest.approx(0.8865, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_the_interval_holds_the_observed_share_and_narrows_with_more_clips(case):
    k, n = case
    low, high = wilson_interval(k, n)
    assert 0 <= low <= k / n <= high <= 1
    low4, high4 = wilson_interval(4 * k, 4 * n)
    assert high4 - low4 < high - low


def test_most_verdict_needs_the_whole_interval_on_one_side():
    assert most_verdict(25, 30) == "holds"
    assert most_verdict(3, 30) == "does not hold"
    assert most_verdict(17, 30) == "inconclusive at 30 clips"


def test_bootstrap_keeps_pairs_and_frames_together_and_is_reproducible():
    from avdemo.evaluation.intervals import bootstrap_interval, mean_interval

    first = np.array([1.0] * 40 + [0.0] * 10)
    assert bootstrap_interval(lambda a, b: (a - b).mean(), first, first) == (0.0, 0.0)  # a pair never splits
    low, high = mean_interval(first)
    assert low < 0.8 < high and mean_interval(first) == (low, high)
    frames = np.repeat(first[:, None], 4, axis=1)  # four identical frames per clip: no narrower than one per clip
    assert mean_interval(frames) == pytest.approx((low, high))
    with pytest.raises(ValueError):
        bootstrap_interval(lambda a, b: 0.0, first, first[:3])


def test_interval_verdicts_and_the_clips_that_would_settle_them():
    from avdemo.evaluation.intervals import Verdict, clips_needed, combined_verdict, interval_verdict

    assert interval_verdict(0.3, 0.2, 0.4, 100, 0.1) == Verdict("reproduced")
    assert interval_verdict(0.3, 0.2, 0.4, 100, 0.5) == Verdict("not reproduced")
    assert interval_verdict(0.3, 0.2, 0.4, 100, 0.5, above=False) == Verdict("reproduced")
    undecided = interval_verdict(0.15, 0.05, 0.25, 100, 0.1)
    assert undecided == Verdict("inconclusive", 100, 400)
    assert str(undecided) == "inconclusive at 100 clips (about 400 would settle it)"
    assert str(interval_verdict(0.1, 0.0, 0.2, 100, 0.1)) == "inconclusive at 100 clips (the estimate sits on the threshold)"
    assert clips_needed(0.15, 0.05, 0.25, 100, 0.1) == 400 and clips_needed(0.1, 0.0, 0.2, 100, 0.1) is None
    yes, no = Verdict("reproduced"), Verdict("not reproduced")
    assert combined_verdict({"a": yes, "b": yes}) == "reproduced"
    assert combined_verdict({"a": no, "b": no}) == "not reproduced"
    assert combined_verdict({"a": yes, "b": no}) == "partly: reproduced for a; not reproduced for b"
    assert combined_verdict({"a": undecided, "b": undecided}) == (
        "inconclusive at 100 clips (about 400 would settle it) for a, b")
    assert combined_verdict({}) == "not measured"


def test_a_ranking_verdict_names_contradicting_pairs_and_counts_the_undecided_ones():
    from avdemo.evaluation.intervals import Verdict, ranking_verdict

    yes, no = Verdict("reproduced"), Verdict("not reproduced")
    assert ranking_verdict({"a vs b": yes, "a vs c": yes}) == "reproduced"
    assert ranking_verdict({"a vs b": yes, "a vs c": no, "a vs d": Verdict("inconclusive", 72, 300)}) == (
        "not reproduced (1 of 3 pairs contradict it: a vs c)")
    assert ranking_verdict({"a vs b": yes, "a vs c": Verdict("inconclusive", 72, 300),
                            "a vs d": Verdict("inconclusive", 72, 2592), "a vs e": Verdict("inconclusive", 72)}) == (
        "inconclusive: 3 of 4 pairs undecided at 72 clips (about 2592 would settle the last of them)")
    assert ranking_verdict({"a vs b": Verdict("inconclusive", 36)}) == "inconclusive: 1 of 1 pairs undecided at 36 clips"
    assert ranking_verdict({}) == "not measured"
