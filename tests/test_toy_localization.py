"""End to end on a toy scene: a tiny model trained without boxes puts its map's peak on the
square whose tone it hears, not on the silent square beside it, and moves the peak onto the
silent square when that square's tone is played instead."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avdemo.measures.localization import distractor_hits, localization_maps, pointing_game, upsample
from toy_task import SCENE_SIZE, tone, toy_scene_batch, train_toy_localizer

CHANCE = 0.14  # a 48-pixel square in a 128-pixel frame


@pytest.fixture(scope="module")
def localizer():
    return train_toy_localizer()


def _heatmaps(model, waveform: torch.Tensor, frames: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return upsample(localization_maps(model(waveform, frames)), SCENE_SIZE)[:, 0].numpy()


def test_the_peak_lands_on_the_sounding_square_not_the_silent_one(localizer):
    scenes = toy_scene_batch(128, seed=99)
    heatmaps = _heatmaps(localizer, scenes["waveform"], scenes["frames"])
    pointing = pointing_game(heatmaps, scenes["boxes"].numpy()).mean()
    on_silent = distractor_hits(heatmaps, scenes["distractor_boxes"].numpy()[:, None]).mean()
    assert pointing >= 3 * CHANCE, f"pointing {pointing:.2f}"  # measured 0.52 (400 steps)
    assert on_silent <= 0.1, f"peak on the silent square in {on_silent:.2f}"  # measured 0.02


def test_playing_the_silent_squares_tone_moves_the_peak_onto_it(localizer):
    scenes = toy_scene_batch(128, seed=99)
    swapped = tone(scenes["distractor_labels"], torch.Generator().manual_seed(5))
    heatmaps = _heatmaps(localizer, swapped, scenes["frames"])
    moved = pointing_game(heatmaps, scenes["distractor_boxes"].numpy()).mean()
    stayed = pointing_game(heatmaps, scenes["boxes"].numpy()).mean()
    assert moved >= 3 * CHANCE and moved > 4 * stayed, f"moved {moved:.2f}, stayed {stayed:.2f}"  # measured 0.55
