"""L-inf attacks on audio, visual or both inputs, with separate budgets, built by name.

    attack = create_attack("pgd", model, eps_audio=0.01, eps_visual=4 / 255, steps=10)
    result = attack(waveform, frames, labels)   # waveform (B, L), frames (B, T, 3, H, W)
"""

# Importing each attack registers it; this order (weakest to strongest) is the order menus show.
from . import fgsm, ifgsm, pgd, mim  # noqa: F401, I001
from .base import MODALITIES, VALID_RANGE, Attack, AttackResult, AttackTrace, logits_of
from .fgsm import FGSM
from .ifgsm import IFGSM
from .mim import MIM
from .pgd import PGD
from .presets import PAPER_EPS_BOTH, PAPER_EPS_SINGLE, paper_preset
from .registry import ATTACKS, attack_parameters, available_attacks, create_attack, register_attack

__all__ = [
    "ATTACKS",
    "Attack",
    "AttackResult",
    "AttackTrace",
    "FGSM",
    "IFGSM",
    "MIM",
    "MODALITIES",
    "PAPER_EPS_BOTH",
    "PAPER_EPS_SINGLE",
    "PGD",
    "VALID_RANGE",
    "attack_parameters",
    "available_attacks",
    "create_attack",
    "logits_of",
    "paper_preset",
    "register_attack",
]
