"""The randomized adversarial curriculum of the ICLR 2025 paper (§5.3, appendix B).

Training is cut into `cycles` equal cycles. Within each, the data-level masking ratio p_r and
the fusion-layer dropout ratio p_d (kept in step: one ratio serves both) move from `low` to
`high`, and the number of attack steps rises from `min_steps` to `max_steps`, so each cycle
starts easy (little masking, few steps) and ends hard; the next cycle starts easy again.

Schedules of the ratio over a cycle's position u in [0, 1): "constant" (always `high`, the
paper's D*M constant rows), "linear" (low + (high - low) u) and "cosine" (low + (high - low)
(1 - cos(pi u)) / 2). Appendix B schedules the ratios from 5 % to 20 %, the defaults here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULES = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class Curriculum:
    """Ratio and attack steps as functions of the training position in [0, 1]."""

    schedule: str = "cosine"
    low: float = 0.05
    high: float = 0.20
    cycles: int = 4
    min_steps: int = 1
    max_steps: int = 3

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown curriculum schedule {self.schedule!r}; choose one of {SCHEDULES}")
        if not 0 <= self.low <= self.high < 1:
            raise ValueError(f"the curriculum ratios need 0 <= low <= high < 1, got {self.low} and {self.high}")
        if self.cycles < 1 or not 1 <= self.min_steps <= self.max_steps:
            raise ValueError("a curriculum needs at least one cycle and 1 <= min_steps <= max_steps")

    def cycle_position(self, position: float) -> float:
        """Where in its cycle a training position in [0, 1] falls, in [0, 1)."""
        return (min(max(position, 0.0), 1.0) * self.cycles) % 1.0

    def ratio(self, position: float) -> float:
        """p_r = p_d at a training position in [0, 1]."""
        u = self.cycle_position(position)
        if self.schedule == "constant":
            return self.high
        rise = u if self.schedule == "linear" else (1 - math.cos(math.pi * u)) / 2
        return self.low + (self.high - self.low) * rise

    def steps(self, position: float) -> int:
        """Attack steps at a training position: `min_steps` at a cycle's start, rising evenly
        to `max_steps` in its last part."""
        span = self.max_steps - self.min_steps + 1
        return self.min_steps + min(int(self.cycle_position(position) * span), span - 1)
