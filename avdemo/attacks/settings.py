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
    # Attacks that sum their objective over several inputs made from the current one: the ICLR
    # 2025 attacks over `copies` randomly transformed copies (`avdemo.attacks.transforms`: which
    # `transforms`, on which modality, one random draw for both modalities or one each), with the
    # weights of their temporal-invariance and modality-misalignment terms; MIG over
    # `path_points` points on the path from a zero input; PAM over `paths` baselines x `scales`.
    copies: int = 4
    transforms: tuple[str, ...] = ("scale", "mask", "blur", "mixup")
    transform_modality: str = "both"
    synchronous: bool = True
    lambda_temporal: float = 1.0
    lambda_misalign: float = 1.0
    path_points: int = 20
    paths: int = 8
    scales: int = 4

    def __post_init__(self) -> None:
        if int(self.steps) != self.steps or self.steps < 1:
            raise ValueError(f"steps must be a whole number of at least 1, got {self.steps}")
        if self.decay < 0:
            raise ValueError(f"momentum decay must be non-negative, got {self.decay}")
        if self.penalty_weight < 0:
            raise ValueError(f"penalty_weight must be non-negative, got {self.penalty_weight}")
        for name in ("copies", "path_points", "paths", "scales"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, got {value}")
        for name in ("lambda_temporal", "lambda_misalign"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if self.transform_modality not in ("audio", "visual", "both"):
            raise ValueError(f"transform_modality must be audio, visual or both, got {self.transform_modality!r}")
        object.__setattr__(self, "transforms", tuple(self.transforms))
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
