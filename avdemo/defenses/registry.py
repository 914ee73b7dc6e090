"""Every defense, declared once: what it is, which zoo entry implements it, which undefended
model it sits on, and the objectives an honest attacker tries against it.

A defense registers itself in its own module (`register_defense(Defense(...))`);
`avdemo.defenses` imports every module of the package. The zoo builder, the evaluation's
Table 3, the cards' robust accuracy and the app's defense menu all read `DEFENSES`.

Three kinds train the defense in: a "training term" adds a loss to the model's own objective
(MinSim, PCL), a "training procedure" changes what the model trains on (adversarial training,
mixup: a `TrainingProcedure`), "both" pairs a term with an inference-time wrapper.

Objectives (see `avdemo.defenses.objectives`): "ce" attacks the defended entry end to end
with plain cross-entropy; "ce+term" adds the defense's own training term (the paper's
adaptive attack); "bpda" attacks through an inference-time wrapper whose backward pass is the
identity (Athalye et al., 2018), "bpda+term" adds the term to that; "transfer:<entry>" crafts
on another zoo entry and replays the adversarial input on this one. A defense's robust
accuracy is the per-clip worst case over all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

BASE_MODEL = "av-concat"
"""As in the paper, every defense is built on the concat model, which is also Table 1's model."""

DefenseKind = Literal["training term", "training procedure", "inference wrapper", "both"]
TermFactory = Callable[[float, int, int], nn.Module]  # (weight, num_classes, fused_dim) -> term


class TrainingProcedure:
    """How a training-time defense changes a training step (`avdemo.training.train` calls it).

    `position` is the share of training done, in [0, 1] (warm-ups and curricula read it).
    `inputs` gives the inputs to train on (adversarial ones for adversarial training);
    `extra_loss` adds a per-clip loss `(B,)` on the training forward's output (mixup);
    `prepare` runs once before training (statistics of the starting model); `describe` says
    what the procedure was, for the run's state and the card. Defaults change nothing."""

    def prepare(self, model: nn.Module, train_set, device) -> None:
        """Called once before the first step with the starting model and the training set."""

    def inputs(self, model: nn.Module, waveform: torch.Tensor, frames: torch.Tensor, labels: torch.Tensor,
               position: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Waveform `(B, L)` in [-1, 1], frames `(B, T, 3, H, W)` in [0, 1] -> the same shapes and ranges."""
        return waveform, frames

    def extra_loss(self, model: nn.Module, output, labels: torch.Tensor) -> torch.Tensor | None:
        return None

    def describe(self) -> dict:
        return {}


ProcedureFactory = Callable[[object], TrainingProcedure]  # (the training recipe) -> procedure


@dataclass(frozen=True)
class Defense:
    """One defense. `key` names it in configs and reports, `name` in menus and tables; `entry`
    is the zoo model that implements it, `base` the undefended model it is compared with; a
    wrapper says which entry it `wraps` and with which `wrapper_options` (see ExFMem)."""

    key: str
    name: str
    description: str
    kind: DefenseKind
    entry: str
    objectives: tuple[str, ...]
    base: str = BASE_MODEL
    make_term: TermFactory | None = None
    make_procedure: ProcedureFactory | None = None
    wraps: str | None = None
    wrapper_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind in ("inference wrapper", "both") and self.wraps is None:
            raise ValueError(f"{self.key}: an inference-time defense must say which entry it wraps")
        if (self.kind == "training procedure") != (self.make_procedure is not None):
            raise ValueError(f"{self.key}: a training procedure, and only one, says how to make it")
        if "ce" not in self.objectives:
            raise ValueError(f"{self.key}: plain cross-entropy must be among the objectives")


DEFENSES: dict[str, Defense] = {}


def register_defense(defense: Defense) -> Defense:
    if defense.key in DEFENSES:
        raise ValueError(f"a defense named {defense.key!r} is already registered")
    DEFENSES[defense.key] = defense
    return defense


def available_defenses() -> list[str]:
    """Defense keys in registration order (training terms first, then wrappers)."""
    order = ("training term", "training procedure", "both", "inference wrapper")
    return sorted(DEFENSES, key=lambda key: (order.index(DEFENSES[key].kind), list(DEFENSES).index(key)))


def get_defense(key: str) -> Defense:
    try:
        return DEFENSES[key]
    except KeyError:
        raise ValueError(f"unknown defense {key!r}; choose one of {available_defenses()}") from None


def defense_of_entry(entry: str) -> Defense | None:
    """The defense a zoo entry implements, or None for an undefended model."""
    return next((d for d in DEFENSES.values() if d.entry == entry), None)


def create_term(key: str, weight: float, num_classes: int, dim: int) -> nn.Module:
    """A defense's training term by key (for training and for adaptive attacks)."""
    defense = get_defense(key)
    if defense.make_term is None:
        raise ValueError(f"the {defense.name} defense has no training term")
    return defense.make_term(weight, num_classes, dim)


def create_procedure(key: str, recipe) -> TrainingProcedure | None:
    """A defense's training procedure for a recipe (`avdemo.training.train.TrainConfig`), or
    None for a defense that trains by a term."""
    defense = get_defense(key)
    return defense.make_procedure(recipe) if defense.make_procedure is not None else None
