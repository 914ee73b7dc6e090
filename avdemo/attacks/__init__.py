"""L-inf attacks on audio, visual or both inputs, with separate budgets, built by name.

    settings = AttackSettings(eps_audio=0.01, eps_visual=4 / 255, steps=10)
    attack = create_attack("pgd", model, settings)
    result = attack(waveform, frames, labels)   # waveform (B, L), frames (B, T, 3, H, W)

Every module of this package that defines an attack registers it (`@register_attack`); they
are all imported here, so adding an attack is adding its file.
"""

from ..plugins import import_modules
from .base import MODALITIES, VALID_RANGE, Attack, AttackResult, AttackTrace, logits_of
from .budgets import BUDGETS, MODALITY_CHOICES, PAPER_EPS_BOTH, PAPER_EPS_SINGLE, budget_settings, named_budget, paper_preset
from .registry import ATTACKS, attack_parameters, available_attacks, create_attack, register_attack
from .settings import AttackSettings

import_modules(__name__, __path__, skip={"base", "budgets", "registry", "settings"})
from .map_attack import map_attack_names  # noqa: E402  (after every attack has registered)

__all__ = [
    "ATTACKS",
    "Attack",
    "AttackResult",
    "AttackSettings",
    "AttackTrace",
    "BUDGETS",
    "MODALITIES",
    "MODALITY_CHOICES",
    "PAPER_EPS_BOTH",
    "PAPER_EPS_SINGLE",
    "VALID_RANGE",
    "attack_parameters",
    "available_attacks",
    "budget_settings",
    "create_attack",
    "logits_of",
    "map_attack_names",
    "named_budget",
    "paper_preset",
    "register_attack",
]
