"""FGSM (Goodfellow et al., 2015): one step of size eps along the gradient's sign."""

from __future__ import annotations

from .base import Attack
from .registry import register_attack


@register_attack
class FGSM(Attack):
    """The base attack as it is: a single step of size eps per attacked modality."""

    name = "fgsm"
    rank = 10
