"""Which code produced a report or a model card."""

from __future__ import annotations

import subprocess

from .. import __version__
from ..paths import ROOT


def git_revision() -> str:
    """The short commit of the working tree, or "unknown" outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=ROOT).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def code_version() -> str:
    """The package version and the commit, e.g. "0.1.0+f32c45d": what cards, reports and
    exported runs stamp."""
    return f"{__version__}+{git_revision()}"
