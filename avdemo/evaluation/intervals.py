"""Uncertainty of a rate measured on a few clips, and the verdict a fixed rule draws from it."""

from __future__ import annotations

import math


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % (z = 1.96) Wilson score interval of a proportion, in [0, 1]; (0, 1) for no trials.
    Unlike the normal approximation it stays inside [0, 1] and is honest at 0 / n and n / n."""
    if trials <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must lie in [0, {trials}], got {successes}")
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return (0.0 if successes == 0 else max(0.0, centre - half)), (1.0 if successes == trials else min(1.0, centre + half))


def most_verdict(successes: int, trials: int) -> str:
    """Does something happen in most cases? "holds" when the whole interval lies above one half,
    "does not hold" when it lies below, "inconclusive at n" otherwise."""
    low, high = wilson_interval(successes, trials)
    if low > 0.5:
        return "holds"
    if high < 0.5:
        return "does not hold"
    return f"inconclusive at {trials} clips"
