"""Uncertainty of a number measured on a few clips, and the verdict a fixed rule draws from it:
Wilson intervals for a proportion over clips, a bootstrap over clips for anything measured per
frame (frames of one clip are not independent) and for paired differences."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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


def bootstrap_interval(statistic, *per_clip, resamples: int = 2000, seed: int = 0, level: float = 0.95
                       ) -> tuple[float, float]:
    """A percentile bootstrap interval of `statistic(*arrays)` over clips: each resample draws
    clips with replacement and keeps every array's values of the same clips together, so a
    paired difference (two models or two attacks on the same clips) keeps its pairing, and the
    frames of one clip (a row of a 2-D array) travel together. `per_clip`: arrays whose first
    axis is the clip; `statistic` maps them to a float. Deterministic for a given `seed`."""
    arrays = [np.asarray(values, dtype=float) for values in per_clip]
    count = len(arrays[0])
    if count == 0:
        return 0.0, 1.0
    if any(len(values) != count for values in arrays):
        raise ValueError("every per-clip array needs one entry per clip")
    draws = np.random.default_rng(seed).integers(0, count, size=(resamples, count))
    values = np.array([statistic(*(values[rows] for values in arrays)) for rows in draws])
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def mean_interval(per_clip, **options) -> tuple[float, float]:
    """The bootstrap interval of a mean over clips (per-clip values, or per-clip rows of frames)."""
    return bootstrap_interval(lambda values: float(values.mean()), per_clip, **options)


def clips_needed(estimate: float, low: float, high: float, clips: int, threshold: float) -> int | None:
    """About how many clips would put the interval wholly on one side of `threshold`, if the
    estimate stayed where it is: the half-width shrinks as 1 / sqrt(clips). None when the
    estimate sits on the threshold (no number of clips settles it)."""
    gap = abs(estimate - threshold)
    if gap < 1e-9:
        return None
    half = max(estimate - low, high - estimate)
    return max(clips + 1, math.ceil(clips * (half / gap) ** 2 - 1e-9))


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict from its interval: `kind` is "reproduced", "not reproduced" or
    "inconclusive"; an inconclusive one keeps the clips it was judged on and about how many would
    settle it (`needed`; None when the estimate sits on the threshold). Read as text by `str`."""
    kind: str
    clips: int = 0
    needed: int | None = None

    def __str__(self) -> str:
        if self.kind != "inconclusive":
            return self.kind
        return f"inconclusive at {self.clips} clips (" + (f"about {self.needed} would settle it" if self.needed else
                                                           "the estimate sits on the threshold") + ")"


def interval_verdict(estimate: float, low: float, high: float, clips: int, threshold: float, above: bool = True
                     ) -> Verdict:
    """The verdict on a claim "the quantity lies above `threshold`" (below, with `above=False`):
    reproduced when the whole 95 % interval supports it, not reproduced when the whole interval
    contradicts it, else inconclusive at `clips` clips with how many clips would settle it."""
    supports, contradicts = (low > threshold, high < threshold) if above else (high < threshold, low > threshold)
    if supports:
        return Verdict("reproduced")
    if contradicts:
        return Verdict("not reproduced")
    return Verdict("inconclusive", clips, clips_needed(estimate, low, high, clips, threshold))


def combined_verdict(verdicts: dict[str, Verdict]) -> str:
    """One verdict from a claim's cases (case -> verdict): "reproduced" when every case is,
    "not reproduced" when every case is, else which case gave which."""
    if not verdicts:
        return "not measured"
    kinds = {verdict.kind for verdict in verdicts.values()}
    if kinds in ({"reproduced"}, {"not reproduced"}):
        return next(iter(kinds))
    grouped: dict[str, list[str]] = {}
    for case, verdict in verdicts.items():
        grouped.setdefault(str(verdict), []).append(case)
    prefix = "partly: " if "reproduced" in kinds else ""
    return prefix + "; ".join(f"{verdict} for {', '.join(cases)}" for verdict, cases in grouped.items())


def ranking_verdict(verdicts: dict[str, Verdict]) -> str:
    """A ranking claim's verdict from its pairwise ones (pair -> verdict): the contradicting pairs
    named, or the undecided ones counted with about how many clips would settle the last of them."""
    if not verdicts:
        return "not measured"
    against = [pair for pair, verdict in verdicts.items() if verdict.kind == "not reproduced"]
    if against:
        return f"not reproduced ({len(against)} of {len(verdicts)} pairs contradict it: " + ", ".join(against) + ")"
    undecided = [verdict for verdict in verdicts.values() if verdict.kind == "inconclusive"]
    if not undecided:
        return "reproduced"
    needed = [verdict.needed for verdict in undecided if verdict.needed]
    return (f"inconclusive: {len(undecided)} of {len(verdicts)} pairs undecided at {undecided[0].clips} clips"
            + (f" (about {max(needed)} would settle the last of them)" if needed else ""))
