"""Registries fill themselves: a package imports every module it holds, and each module
registers what it defines (an attack, a defense). Adding one is adding its file."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable


def import_modules(package: str, path: Iterable[str], skip: set[str]) -> None:
    """Import every module of `package` (its `__path__`) except the machinery in `skip`."""
    for module in pkgutil.iter_modules(path):
        if module.name not in skip:
            importlib.import_module(f"{package}.{module.name}")
