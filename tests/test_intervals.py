"""Wilson intervals and the "in most clips" verdict drawn from them."""

from __future__ import annotations

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
