"""Which code produced a report or a model card."""

from __future__ import annotations

import subprocess

from ..paths import ROOT


def git_revision() -> str:
    """The short commit of the working tree, or "unknown" outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=ROOT).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
