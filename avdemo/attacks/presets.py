"""The paper's threat model ("paper preset"), converted to avdemo's input units.

The reference code of Tian & Xu (CVPR 2021) perturbs frames in ImageNet-normalised space,
x_n = (x - mean_c) / std_c, and waveforms directly. Its repository's README fixes the
budgets at eps = 0.006 when both modalities are attacked and 0.012 when one is (the paper's
captions say 0.06 / 0.12, a typo). An L-inf ball of radius e in normalised units is, per
channel, a ball of radius e * std_c in pixel units, so the visual budget becomes
(e * 0.229, e * 0.224, e * 0.225): about 0.35/255 for e = 0.006, far below 1/255. Iterative
attacks take 10 steps of eps / 8 (MIM with decay 1); FGSM takes one step of eps.
"""

from __future__ import annotations

from typing import Literal

from ..models import IMAGENET_STD
from .registry import attack_parameters

Modality = Literal["audio", "visual", "both"]

PAPER_EPS_BOTH = 0.006
PAPER_EPS_SINGLE = 0.012
PAPER_STEPS = 10


def paper_preset(attack: str, modality: Modality) -> dict:
    """Keyword arguments for `create_attack(attack, model, **kwargs)` reproducing the paper."""
    if modality not in ("audio", "visual", "both"):
        raise ValueError(f"modality must be audio, visual or both, got {modality!r}")
    eps = PAPER_EPS_BOTH if modality == "both" else PAPER_EPS_SINGLE
    eps_audio = eps if modality in ("audio", "both") else 0.0
    eps_visual = tuple(eps * s for s in IMAGENET_STD) if modality in ("visual", "both") else 0.0
    candidates = {
        "eps_audio": eps_audio,
        "eps_visual": eps_visual,
        "step_audio": eps_audio / 8 if eps_audio else None,
        "step_visual": tuple(e / 8 for e in eps_visual) if eps_visual else None,
        "steps": PAPER_STEPS,
        "decay": 1.0,
        "random_start": False,
    }
    accepted = attack_parameters(attack)
    return {key: value for key, value in candidates.items() if key in accepted}
