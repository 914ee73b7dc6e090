"""End to end on a toy scene: a tiny model trained without boxes puts its map's peak on the
square whose tone it hears, not on the silent square beside it, and moves the peak onto the
silent square when that square's tone is played instead."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from avdemo.evaluation.engine import Engine
from avdemo.evaluation.sound_following import measure_clean, measure_swap, scores_from_rows
from avdemo.evaluation.store import ResultsStore
from avdemo.measures.localization import distractor_hits, localization_maps, pointing_game, upsample
from toy_task import SCENE_SIZE, tone, toy_scene_batch

CHANCE = 0.14  # a 48-pixel square in a 128-pixel frame


@pytest.fixture(scope="module")
def localizer(toy_localizer):
    return toy_localizer


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


def _as_dataset(scenes: dict) -> list[dict]:
    """Toy scenes as split samples: one frame, one distractor slot used of two, and the
    third scene of each class without its distractor."""
    samples = []
    for i in range(len(scenes["labels"])):
        distractor_box = torch.full((1, 2, 4), float("nan"))
        if i % 3:
            distractor_box[0, 0] = scenes["distractor_boxes"][i]
        samples.append({"waveform": scenes["waveform"][i], "frames": scenes["frames"][i], "label": int(scenes["labels"][i]),
                        "box": scenes["boxes"][i][None], "distractor_box": distractor_box,
                        "distractor_label": torch.tensor([int(scenes["distractor_labels"][i]), -1])})
    return samples


def test_the_swap_measurement_finds_the_map_following_the_sound(localizer):
    dataset = _as_dataset(toy_scene_batch(96, seed=99))
    clean = measure_clean(localizer, dataset)
    assert clean["clips"] == clean["frames"] == 96 and clean["clips_without_distractor"] == 32
    assert clean["pointing"] >= 3 * CHANCE
    # The card build reads the same scores from the evaluation engine's clean rows.
    batch = default_collate(dataset)
    with torch.no_grad():
        output = localizer(batch["waveform"], batch["frames"])
    rows = Engine({}, ResultsStore(), "toy")._rows(output, batch, [{"clip": i} for i in range(len(dataset))], None)
    assert scores_from_rows(rows, dataset) == clean
    swap = measure_swap(localizer, dataset)
    assert swap["clips"] == 64  # the clips with a distractor
    assert swap["followed"] >= 3 * CHANCE and swap["followed"] > 2 * swap["stayed_on_source"]
