"""How a zoo entry is attacked, objective by objective, and the per-clip worst case.

An objective says which model's gradients craft the perturbation (the entry itself, a
transfer source, or the entry with its wrapper made transparent for BPDA) and whether the
defense's training term joins the loss. The adversarial input is always judged on the real
entry, so a transfer or BPDA attack counts only if it fools the defended model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..attacks import AttackResult, AttackSettings, create_attack
from ..models import AVOutput
from ..zoo import cached_model, cached_term
from .registry import defense_of_entry

OBJECTIVE_DESCRIPTIONS = {
    "ce": "cross-entropy, end to end",
    "ce+term": "cross-entropy plus the defense's training term",
    "bpda": "cross-entropy through the feature memory taken as the identity (BPDA)",
    "bpda+term": "BPDA plus the defense's training term",
    "transfer": "crafted on {source} with cross-entropy, replayed on this model",
}


@dataclass(frozen=True)
class Objective:
    """`surrogate` is the zoo entry whose gradients the attack follows; `term` adds the
    victim's training term; `straight_through` turns the surrogate's wrapper into BPDA."""

    name: str
    surrogate: str
    term: bool = False
    straight_through: bool = False

    @property
    def transfer(self) -> bool:
        return self.name.startswith("transfer:")

    def describe(self) -> str:
        if self.transfer:
            return OBJECTIVE_DESCRIPTIONS["transfer"].format(source=self.surrogate)
        return OBJECTIVE_DESCRIPTIONS[self.name]


def parse_objective(name: str, entry: str) -> Objective:
    if name.startswith("transfer:"):
        return Objective(name, surrogate=name.removeprefix("transfer:"))
    if name not in OBJECTIVE_DESCRIPTIONS or name == "transfer":
        raise ValueError(f"unknown objective {name!r}; choose ce, ce+term, bpda, bpda+term or transfer:<entry>")
    return Objective(name, surrogate=entry, term=name.endswith("+term"), straight_through=name.startswith("bpda"))


def objectives_for(entry: str) -> list[Objective]:
    """The objectives to try against a zoo entry: its defense's list, or plain cross-entropy."""
    defense = defense_of_entry(entry)
    names = defense.objectives if defense else ("ce",)
    return [parse_objective(name, entry) for name in names]



def craft(objective: Objective, entry: str, attack: str, settings: AttackSettings, waveform: torch.Tensor,
          frames: torch.Tensor, labels: torch.Tensor, device: str = "cpu",
          on_step: Callable[[int, int], None] | None = None) -> tuple[AttackResult, AVOutput]:
    """Craft with one objective (its surrogate's gradients, with the entry's training term if it
    says so) and judge the adversarial input on the entry itself: (the attack's result, the
    entry's output on it). Inputs as every attack takes them; models from `zoo.cached_model`."""
    surrogate = cached_model(objective.surrogate, device, objective.straight_through)
    term = cached_term(entry, device) if objective.term else None
    result = create_attack(attack, surrogate, settings, extra_loss=term)(waveform, frames, labels, on_step=on_step)
    if objective.surrogate == entry:  # BPDA's forward is the entry's own forward
        return result, result.output
    with torch.no_grad():
        return result, cached_model(entry, device)(result.waveform, result.frames)
