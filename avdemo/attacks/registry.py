"""Attacks built by name, as in spencerwooo/torchattack's `create_attack`."""

from __future__ import annotations

import inspect

from torch import nn

from .base import Attack

ATTACKS: dict[str, type[Attack]] = {}


def register_attack(cls: type[Attack]) -> type[Attack]:
    """Class decorator: make an attack available to `create_attack` under `cls.name`."""
    if cls.name in ATTACKS:
        raise ValueError(f"an attack named {cls.name!r} is already registered")
    ATTACKS[cls.name] = cls
    return cls


def available_attacks() -> list[str]:
    """The registered attack names, in registration order."""
    return list(ATTACKS)


def attack_parameters(name: str) -> list[str]:
    """The keyword arguments an attack accepts, its own and its base classes' (for UI controls)."""
    names: list[str] = []
    for cls in _lookup(name).__mro__:
        if "__init__" in vars(cls) and issubclass(cls, Attack):
            parameters = inspect.signature(vars(cls)["__init__"]).parameters.values()
            names += [p.name for p in parameters if p.kind is p.KEYWORD_ONLY and p.name not in names]
    return names


def create_attack(name: str, model: nn.Module, **kwargs) -> Attack:
    """Build a registered attack, e.g. `create_attack("pgd", model, eps_visual=8/255, steps=10)`."""
    cls = _lookup(name)
    unknown = set(kwargs) - set(attack_parameters(name))
    if unknown:
        raise TypeError(f"{name} does not take {sorted(unknown)}; it takes {attack_parameters(name)}")
    return cls(model, **kwargs)


def _lookup(name: str) -> type[Attack]:
    try:
        return ATTACKS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown attack {name!r}; choose one of {available_attacks()}") from None
