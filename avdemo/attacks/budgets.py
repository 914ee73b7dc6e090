"""The named budgets every table, card and the app speak of, in one place.

The CVPR 2021 reference code perturbs frames in ImageNet-normalised space and waveforms
directly, with eps = 0.006 when both modalities are attacked and 0.012 when one is (its
README corrects the captions' 0.06 / 0.12). A ball of radius e in normalised units is, per
channel, a ball of radius e * std_c in pixel units, so those budgets are about 0.35/255 and
0.69/255 in pixels: far below one grey level. The captions' values (ten times more, about
3.4/255) are kept as a second budget, and a *visible* budget (audio 0.01, pixels 4/255) is
the one at which defenses have something to defend.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import IMAGENET_STD
from .settings import AttackSettings, Budget

MODALITY_CHOICES = ("audio", "visual", "both")


@dataclass(frozen=True)
class NamedBudget:
    """eps per modality in input units (audio: waveform amplitude; visual: pixels, per channel)."""

    name: str
    description: str
    audio: float
    visual: Budget


def _normalised(name: str, eps: float, description: str) -> NamedBudget:
    return NamedBudget(name, description, eps, tuple(eps * s for s in IMAGENET_STD))


BUDGETS: dict[str, NamedBudget] = {
    budget.name: budget
    for budget in (
        _normalised("paper", 0.006, "the paper preset: 0.006 in ImageNet-normalised units (~0.35/255)"),
        _normalised("paper-single", 0.012, "the paper preset for one attacked modality in Table 1: 0.012"),
        _normalised("caption", 0.06, "the paper captions' budget: 0.06 in normalised units (~3.4/255)"),
        _normalised("caption-single", 0.12, "the captions' budget for one modality in Table 1: 0.12"),
        NamedBudget("visible", "audio 0.01 and pixels 4/255: perturbations a defense must withstand", 0.01, 4 / 255),
    )
}
PAPER_EPS_BOTH = BUDGETS["paper"].audio
PAPER_EPS_SINGLE = BUDGETS["paper-single"].audio


def named_budget(name: str) -> NamedBudget:
    try:
        return BUDGETS[name]
    except KeyError:
        raise ValueError(f"unknown budget {name!r}; choose one of {list(BUDGETS)}") from None


def budget_settings(name: str, modality: str, **changes) -> AttackSettings:
    """Settings for a named budget on `modality` ("audio", "visual" or "both"): eps on the
    attacked modalities, 0 on the other, steps of eps / 8."""
    if modality not in MODALITY_CHOICES:
        raise ValueError(f"modality must be one of {MODALITY_CHOICES}, got {modality!r}")
    budget = named_budget(name)
    return AttackSettings(eps_audio=budget.audio if modality in ("audio", "both") else 0.0,
                          eps_visual=budget.visual if modality in ("visual", "both") else 0.0).replace(**changes)


def paper_preset(modality: str) -> AttackSettings:
    """The reference threat model: 0.006 with both modalities attacked, 0.012 with one, 10
    steps of eps / 8, no random start, MIM decay 1."""
    return budget_settings("paper" if modality == "both" else "paper-single", modality)
