"""The per-segment strip and the one-line localization verdicts, on hand-built maps placed into a
real run's analysis (so the boxes, frames and classes are those of a shipped example)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from avdemo.lab.analysis import run
from avdemo.lab.ui import attack_settings, example_paths, load_input, model_frames
from avdemo.lab.views import (localization_verdict, map_attack_sentence, peak_move_pixels, segment_strip, summary_markdown,
                              target_picker)
from avdemo.zoo import list_models

pytestmark = pytest.mark.skipif(not list_models(), reason="needs the shipped model zoo in checkpoints/")
BANNER = 20  # rows of the verdict band at the bottom of each tile


@pytest.fixture(scope="module")
def analysis():
    video = next(str(path) for path in example_paths() if path.stem == "cello-beside-violin")
    clip, truth = load_input(video, frames=model_frames("av-attention"))
    return run(clip, "av-attention", "none", "pgd", attack_settings("both", 0.01, 4, 1, 0, False), truth=truth)


def peaked_at(points: list[tuple[float, float]], size: int = 224) -> np.ndarray:
    """Maps `(T, size, size)` in [0, 1] whose single maximum is at each (x, y)."""
    ys, xs = np.mgrid[0:size, 0:size]
    return np.stack([np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / 800.0) for x, y in points]).astype(np.float32)


def centre(box: np.ndarray) -> tuple[float, float]:
    return float((box[0] + box[2]) / 2), float((box[1] + box[3]) / 2)


def with_maps(analysis, clean_points, attacked_points, truth="keep"):
    changes = {"clean_maps": peaked_at(clean_points), "attacked_maps": peaked_at(attacked_points)}
    if truth is None:
        changes["truth"] = None
    return dataclasses.replace(analysis, **changes)


def test_verdicts_say_kept_moved_to_the_silent_object_or_off_every_object(analysis):
    truth = analysis.truth
    segments = len(truth.box)
    on_source = [centre(box) for box in truth.box]
    on_violin = [centre(box[0]) for box in truth.distractor_box]
    corner = [(2.0, 2.0)] * segments  # on no object
    assert truth.distractor_labels == ["violin"]
    kept = localization_verdict(with_maps(analysis, on_source, on_source))
    assert kept == f"Localization kept (on the cello in {segments}/{segments} segments attacked, {segments}/{segments} clean)."
    moved = localization_verdict(with_maps(analysis, on_source, on_violin[:-1] + on_source[-1:]))
    assert moved.startswith(f"Localization moved to the silent violin in {segments - 1}/{segments} segments")
    off = localization_verdict(with_maps(analysis, on_source, corner))
    assert off.startswith("Localization moved off every object (on the cello in 0/")


def test_without_ground_truth_the_verdict_is_the_peak_move_in_pixels(analysis):
    segments = len(analysis.truth.box)
    moved = with_maps(analysis, [(50.0, 60.0)] * segments, [(80.0, 100.0)] * segments, truth=None)
    np.testing.assert_allclose(peak_move_pixels(moved), 50.0)  # a 30-40-50 triangle
    assert localization_verdict(moved).startswith("No ground truth for this clip: the map's peak moved 50 px on average")
    assert localization_verdict(dataclasses.replace(analysis, clean_maps=None, attacked_maps=None)).startswith("No map")


def test_strip_is_clean_above_attacked_in_viridis_with_a_verdict_per_segment(analysis):
    truth = analysis.truth
    segments, size = len(truth.box), 224
    on_source = [centre(box) for box in truth.box]
    on_violin = [centre(box[0]) for box in truth.distractor_box]
    strip = segment_strip(with_maps(analysis, on_source, on_violin))
    assert strip.shape == (2 * size, segments * size, 3) and strip.dtype == np.uint8
    first = strip[: size - BANNER, :size].astype(float)  # clean, segment 1, above its verdict band
    heat = np.round(peaked_at(on_source[:1])[0] * 255).astype(np.uint8)
    viridis = cv2.applyColorMap(heat, cv2.COLORMAP_VIRIDIS)[..., ::-1].astype(float)
    expected = np.round(0.55 * analysis.clip.frames[0].astype(float) + 0.45 * viridis)[: size - BANNER]
    assert (np.abs(first - expected).max(-1) <= 1).mean() > 0.85  # all but the boxes, their names and the cross
    # the verdict bands: green text where the peak is on the source (clean row), orange elsewhere (attacked row)
    clean_band, attacked_band = strip[size - BANNER: size, :size], strip[2 * size - BANNER:, :size]
    green = (clean_band[..., 1] > 200) & (clean_band[..., 0] < 160)
    orange = (attacked_band[..., 0] > 230) & (attacked_band[..., 2] < 100)
    assert green.sum() > 30 and orange.sum() > 30 and not ((attacked_band[..., 1] > 200) & (attacked_band[..., 0] < 160)).any()
    assert segment_strip(dataclasses.replace(analysis, clean_maps=None, attacked_maps=None)) is None


def test_map_attack_sentence_says_what_moved_and_what_did_not(analysis):
    truth = analysis.truth
    segments = len(truth.box)
    on_source = [centre(box) for box in truth.box]
    on_violin = [centre(box[0]) for box in truth.distractor_box]
    clean_class = analysis.classes[int(analysis.clean_probabilities.argmax())]
    other = next(c for c in analysis.classes if c != clean_class)
    same_class = {"attacked_probabilities": analysis.clean_probabilities}
    changed = {"attacked_probabilities": np.eye(len(analysis.classes))[analysis.classes.index(other)]}
    target = dataclasses.replace(with_maps(analysis, on_source, on_violin[:-1] + on_source[-1:]), attack="map-target",
                                 target_name="the silent violin", target_boxes=truth.distractor_box[:, 0], **same_class)
    assert map_attack_sentence(target) == (f"The class stayed {clean_class}; the map moved onto the silent violin in "
                                           f"{segments - 1} of {segments} segments.")
    away = dataclasses.replace(with_maps(analysis, on_source, on_violin), attack="map-away", **changed)
    assert map_attack_sentence(away) == (f"The class changed from {clean_class} to {other} (it was to stay); the map "
                                         f"moved off the sounding cello in {segments} of {segments} segments.")
    only = dataclasses.replace(with_maps(analysis, on_source, on_source), attack="class-only", **changed)
    assert map_attack_sentence(only) == (f"The class changed from {clean_class} to {other}; the map stayed on the "
                                         f"sounding cello in {segments} of {segments} segments.")
    blind = dataclasses.replace(with_maps(analysis, [(20.0, 20.0)] * segments, [(200.0, 20.0)] * segments, truth=None),
                                attack="map-away", **same_class)
    assert map_attack_sentence(blind).endswith(f"away from where it was (more than 12% of the frame) in {segments} of "
                                               f"{segments} segments.")
    assert map_attack_sentence(analysis) is None  # a class attack
    assert map_attack_sentence(target) in summary_markdown(target)
    # the target is drawn (magenta) on the strip and on the frame to click
    magenta = lambda image: ((image[..., 0] > 230) & (image[..., 1] < 90) & (image[..., 2] > 230)).sum()  # noqa: E731
    assert magenta(segment_strip(target)) > 100 and magenta(segment_strip(dataclasses.replace(target, target_boxes=None))) == 0
    picker = target_picker(analysis.clip.frames[0], truth, truth.distractor_box[0, 0])
    assert picker.shape == analysis.clip.frames[0].shape and magenta(picker) > 50
