"""Attacks built by name, as in spencerwooo/torchattack's `create_attack`.

An attack registers itself with `@register_attack` in its own module; `avdemo.attacks`
imports every module of the package, so a new attack is one new file (plus its test).
"""

from __future__ import annotations

from torch import nn

from .base import Attack, ExtraLoss
from .settings import AttackSettings

ATTACKS: dict[str, type[Attack]] = {}
ALIASES: dict[str, str] = {}  # another name an attack is known by (e.g. "mi-fgsm") -> its name


def register_attack(cls: type[Attack]) -> type[Attack]:
    """Class decorator: make an attack available to `create_attack` under `cls.name` and its
    own `aliases` (not inherited ones; menus list only the name)."""
    aliases = cls.__dict__.get("aliases", ())
    for name in (cls.name, *aliases):
        if name in ATTACKS or name in ALIASES:
            raise ValueError(f"an attack named {name!r} is already registered")
    ATTACKS[cls.name] = cls
    ALIASES.update({alias: cls.name for alias in aliases})
    return cls


def canonical_name(name: str) -> str:
    """The registered name of an attack given by its name or an alias, in any case."""
    name = name.lower()
    if name not in ATTACKS and name not in ALIASES:
        raise ValueError(f"unknown attack {name!r}; choose one of {available_attacks()}")
    return ALIASES.get(name, name)


def available_attacks() -> list[str]:
    """The registered attack names, by rank (roughly weakest first), for menus and tests."""
    return sorted(ATTACKS, key=lambda name: (ATTACKS[name].rank, name))


def attack_parameters(name: str) -> tuple[str, ...]:
    """The `AttackSettings` fields an attack reads (for UI controls)."""
    return _lookup(name).uses


def create_attack(name: str, model: nn.Module, settings: AttackSettings | None = None, *,
                  extra_loss: ExtraLoss | None = None, **fields) -> Attack:
    """Build a registered attack from settings, e.g. `create_attack("pgd", model, settings)`,
    or from fields, e.g. `create_attack("pgd", model, eps_visual=8/255, steps=10)`. A field
    given by keyword that the attack does not use is an error; a settings object may carry
    fields an attack ignores (the app's controls are shared by all attacks)."""
    cls = _lookup(name)
    unknown = set(fields) - set(cls.uses)
    if unknown:
        raise TypeError(f"{name} does not take {sorted(unknown)}; it takes {list(cls.uses)}")
    return cls(model, (settings or AttackSettings()).replace(**fields), extra_loss)


def _lookup(name: str) -> type[Attack]:
    return ATTACKS[canonical_name(name)]
