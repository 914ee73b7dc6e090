"""What a person (or a table) chooses about an attack, as one typed object.

The app's controls, the evaluation's protocols and the CLI all build an `AttackSettings` and
hand it to `create_attack`; each attack reads the fields it uses (`Attack.uses`) and ignores
the rest, so no caller needs to know which attack takes which option.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

Budget = float | Sequence[float]


@dataclass(frozen=True)
class AttackSettings:
    """Budgets in input units: `eps_audio` in waveform amplitude, `eps_visual` in pixel units
    (1/255 = 0.0039), one value or one per RGB channel. A budget of 0 leaves that modality
    untouched. Step sizes default to eps / 8 (the paper's choice)."""

    eps_audio: Budget = 0.0
    eps_visual: Budget = 0.0
    steps: int = 10
    step_audio: Budget | None = None
    step_visual: Budget | None = None
    random_start: bool = False
    seed: int | None = None
    decay: float = 1.0
    targeted: bool = False
    # Attacks on the localization map (`avdemo.attacks.map_attack`): the region the map should
    # move into, as (x0, y0, x1, y1) fractions of the frame, one box for every frame or one per
    # frame; whether to keep the class meanwhile; and the weight of the term that keeps the class
    # (map attacks) or the map (the class-only attack).
    target_region: tuple[tuple[float, float, float, float], ...] | None = None
    keep_class: bool = True
    penalty_weight: float = 1.0

    def __post_init__(self) -> None:
        if int(self.steps) != self.steps or self.steps < 1:
            raise ValueError(f"steps must be a whole number of at least 1, got {self.steps}")
        if self.decay < 0:
            raise ValueError(f"momentum decay must be non-negative, got {self.decay}")
        if self.penalty_weight < 0:
            raise ValueError(f"penalty_weight must be non-negative, got {self.penalty_weight}")
        if self.target_region is not None:
            boxes = tuple(tuple(float(v) for v in box) for box in self.target_region)
            for x0, y0, x1, y1 in boxes:
                if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
                    raise ValueError(f"a target region is (x0, y0, x1, y1) with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, "
                                     f"got {(x0, y0, x1, y1)}")
            object.__setattr__(self, "target_region", boxes)

    def replace(self, **changes) -> AttackSettings:
        return dataclasses.replace(self, **changes)


FIELDS = tuple(field.name for field in dataclasses.fields(AttackSettings))
