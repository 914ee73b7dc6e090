"""Where avdemo keeps what it builds or downloads: `$AVDEMO_CACHE`, else the user's cache
directory (`$XDG_CACHE_HOME/avdemo`, by default `~/.cache/avdemo`). Never inside the repo."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The root of avdemo's cache (created on first use)."""
    explicit = os.environ.get("AVDEMO_CACHE")
    if explicit:
        root = Path(explicit)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "avdemo"
    root.mkdir(parents=True, exist_ok=True)
    return root
