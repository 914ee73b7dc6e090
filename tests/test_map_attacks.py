"""Attacks on the localization map (map-target, map-away, class-only): the region mask and the
success metrics against hand-built maps, and on a tiny trained localizer (toy scenes: a coloured
square with its tone, a silent square beside it) that each attack does what its name says."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avdemo.attacks import AttackSettings, create_attack
from avdemo.attacks.map_attack import region_mask
from avdemo.measures.localization import localization_maps, map_attack_success, upsample
from avdemo.models import ModelConfig, build_model
from toy_task import SCENE_SIZE, toy_scene_batch

SCENES = 16
VISUAL = dict(eps_audio=0.0, eps_visual=8 / 255, steps=20)


def test_region_mask_is_the_share_of_each_cell_the_box_covers():
    mask = region_mask(((0.0, 0.0, 0.5, 0.5),), frames=2, height=4, width=4)
    expected = np.zeros((4, 4))
    expected[:2, :2] = 1
    assert mask.shape == (2, 4, 4) and np.allclose(mask[0], expected) and np.allclose(mask[1], expected)
    half = region_mask(((0.125, 0.0, 0.375, 0.25),), frames=1, height=4, width=4)[0]  # half of two cells
    assert np.allclose(half[0, :2], 0.5) and float(half.sum()) == pytest.approx(1.0)
    per_frame = region_mask(((0.0, 0.0, 0.25, 0.25), (0.75, 0.75, 1.0, 1.0)), frames=2, height=4, width=4)
    assert per_frame[0, 0, 0] == 1 and per_frame[1, 3, 3] == 1 and per_frame.sum() == 2
    with pytest.raises(ValueError, match="one per frame"):
        region_mask(((0, 0, 1, 1),) * 3, frames=2, height=4, width=4)
    with pytest.raises(ValueError, match="0 <= x0 < x1 <= 1"):
        AttackSettings(target_region=((0.5, 0.0, 0.2, 1.0),))


def test_success_metrics_on_hand_built_maps():
    maps = np.zeros((3, 10, 10))
    for index, (y, x) in enumerate([(2, 2), (7, 7), (2, 7)]):
        maps[index, y, x] = 1  # peaks: top-left, bottom-right, top-right
    box = np.array([[0, 0, 5, 5]] * 3, float)  # the top-left quarter
    assert map_attack_success("map-target", maps, box, False).tolist() == [True, False, False]
    assert map_attack_success("map-away", maps, box, False).tolist() == [False, True, True]
    assert map_attack_success("class-only", maps, box, True).tolist() == [True, False, False]
    assert map_attack_success("class-only", maps, box, np.array([False, True, True])).tolist() == [False, False, False]
    with pytest.raises(ValueError, match="not a map attack"):
        map_attack_success("pgd", maps, box, True)


def _maps_and_classes(model, waveform, frames):
    with torch.no_grad():
        output = model(waveform, frames)
    return upsample(localization_maps(output), SCENE_SIZE)[:, 0].numpy(), output.logits.argmax(-1)


def _empty_quarter(scene: dict, index: int) -> tuple[float, float, float, float] | None:
    """A quarter of the frame touching neither square, as fractions; None if there is none."""
    half = SCENE_SIZE // 2
    for left in (0, half):
        for top in (0, half):
            clear = all(box[2] <= left or box[0] >= left + half or box[3] <= top or box[1] >= top + half
                        for box in (scene["boxes"][index].tolist(), scene["distractor_boxes"][index].tolist()))
            if clear:
                return left / SCENE_SIZE, top / SCENE_SIZE, (left + half) / SCENE_SIZE, (top + half) / SCENE_SIZE
    return None


def test_map_target_moves_the_peak_into_an_empty_region_while_the_class_holds(toy_localizer):
    scenes = toy_scene_batch(4 * SCENES, seed=123)
    moved, held, tried = 0, 0, 0
    for index in range(len(scenes["labels"])):
        region = _empty_quarter(scenes, index)
        if region is None:
            continue
        tried += 1
        waveform, frames, labels = (scenes[k][index: index + 1] for k in ("waveform", "frames", "labels"))
        result = create_attack("map-target", toy_localizer, target_region=(region,), **VISUAL)(waveform, frames, labels)
        assert torch.equal(result.waveform, waveform)  # the untouched modality is bit-identical
        maps, classes = _maps_and_classes(toy_localizer, result.waveform, result.frames)
        box = np.array([region]) * SCENE_SIZE
        moved += int(map_attack_success("map-target", maps, box, False)[0])
        held += int(classes[0] == labels[0])
    assert tried >= 8, f"only {tried} scenes with an empty quarter"
    assert moved >= 0.6 * tried and held == tried, f"peak moved in {moved}/{tried}, class held in {held}/{tried}"


def test_map_away_moves_the_peak_off_the_source_while_the_class_holds(toy_localizer):
    scenes = toy_scene_batch(SCENES, seed=123)
    result = create_attack("map-away", toy_localizer, **VISUAL)(scenes["waveform"], scenes["frames"], scenes["labels"])
    maps, classes = _maps_and_classes(toy_localizer, result.waveform, result.frames)
    off = map_attack_success("map-away", maps, scenes["boxes"].numpy(), False)
    assert off.mean() >= 0.8 and (classes == scenes["labels"]).float().mean() >= 0.9  # measured 1.0 and 1.0


def test_class_only_changes_the_class_and_keeps_the_peak_more_often_than_pgd(toy_localizer):
    scenes = toy_scene_batch(SCENES, seed=123)
    waveform, frames, labels = scenes["waveform"], scenes["frames"], scenes["labels"]
    success = {}
    for name in ("class-only", "pgd"):
        result = create_attack(name, toy_localizer, **VISUAL)(waveform, frames, labels)
        maps, classes = _maps_and_classes(toy_localizer, result.waveform, result.frames)
        changed = (classes != labels).numpy()
        assert changed.mean() >= 0.9, f"{name} changed the class in {changed.mean():.2f}"
        success[name] = map_attack_success("class-only", maps, scenes["boxes"].numpy(), changed).mean()
    # measured 0.50 against 0.19 on these 16 scenes (clean pointing 0.69)
    assert success["class-only"] >= success["pgd"] + 0.15, success


def test_map_attacks_need_a_map_and_a_target_region(toy_localizer):
    scenes = toy_scene_batch(2, seed=4)
    inputs = (scenes["waveform"], scenes["frames"], scenes["labels"])
    with pytest.raises(ValueError, match="needs a target region"):
        create_attack("map-target", toy_localizer, **VISUAL)
    audio_only = build_model(ModelConfig(num_classes=4, kind="audio", width=1 / 16)).eval()
    with pytest.raises(ValueError, match="needs a model with both modalities and a map"):
        create_attack("map-away", audio_only, eps_audio=0.01)(*inputs)
    with pytest.raises(TypeError, match="does not take"):
        create_attack("class-only", toy_localizer, keep_class=False)
