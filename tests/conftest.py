"""Shared fixtures: deterministic torch, a temporary media folder."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def toy_localizer():
    """A tiny av-attention localizer trained on toy scenes (~50 s on 2 cores): trained once."""
    from toy_task import train_toy_localizer

    return train_toy_localizer()
