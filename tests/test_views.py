"""The per-segment strip, the one-line localization verdicts, the trace and the sentences on
transfer and masking, on hand-built maps, perturbations, traces and outcomes placed into a real
run's analysis (so the boxes, frames and classes are those of a shipped example)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from avdemo.lab.analysis import Masking, Trace, run
from avdemo.lab.ui import attack_settings, example_paths, load_input, model_frames
from avdemo.lab.views import (AUDIO_BAR_COLOUR, localization_verdict, map_attack_sentence, masking_sentence, peak_move_pixels,
                              segment_audio_levels, segment_strip, summary_markdown, target_picker, trace_figure,
                              transfer_sentence)
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
    assert strip.shape == (3 * size, segments * size, 3) and strip.dtype == np.uint8  # clean, attacked, perturbation
    first = strip[: size - BANNER, :size].astype(float)  # clean, segment 1, above its verdict band
    heat = np.round(peaked_at(on_source[:1])[0] * 255).astype(np.uint8)
    viridis = cv2.applyColorMap(heat, cv2.COLORMAP_VIRIDIS)[..., ::-1].astype(float)
    expected = np.round(0.55 * analysis.clip.frames[0].astype(float) + 0.45 * viridis)[: size - BANNER]
    assert (np.abs(first - expected).max(-1) <= 1).mean() > 0.85  # all but the boxes, their names and the cross
    # the verdict bands: green text where the peak is on the source (clean row), orange elsewhere (attacked row)
    clean_band, attacked_band = strip[size - BANNER: size, :size], strip[2 * size - BANNER: 2 * size, :size]
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
    maps = lambda shown: segment_strip(shown)[: 2 * 224]  # noqa: E731  (the maps' rows: the perturbation's is noise)
    assert magenta(maps(target)) > 100 and magenta(maps(dataclasses.replace(target, target_boxes=None))) == 0
    picker = target_picker(analysis.clip.frames[0], truth, truth.distractor_box[0, 0])
    assert picker.shape == analysis.clip.frames[0].shape and magenta(picker) > 50


def test_the_strip_shows_where_in_time_the_perturbation_is(analysis):
    segments, size = len(analysis.clip.frames), 224
    assert segments == 4  # the windows below are those of T = 4 over 65535 samples
    frames = np.zeros_like(analysis.delta_frames)
    frames[1, 50:100, 50:100] = 2 / 255  # segment 2's frame only
    waveform = np.zeros_like(analysis.delta_waveform)
    waveform[34000:48000] = 0.01  # inside segment 3's window only: samples 32767-49150, centred on 62.5 % of the clip
    changed = dataclasses.replace(analysis, delta_frames=frames, delta_waveform=waveform)
    levels, unit = segment_audio_levels(changed)
    clip_rms = np.sqrt(np.mean(analysis.clip.waveform.astype(np.float64) ** 2))
    assert unit == "dB" and np.isneginf(levels[[0, 1, 3]]).all()  # re the clip's level
    assert levels[2] == pytest.approx(20 * np.log10(0.01 * np.sqrt(14000 / 16384) / clip_rms), abs=1e-6)
    row = segment_strip(changed)[2 * size:]  # the perturbation of each segment (its first line: the white rule)
    tiles = [row[:, index * size: (index + 1) * size] for index in range(segments)]
    magma = lambda level: cv2.applyColorMap(np.full((1, 1), level, np.uint8), cv2.COLORMAP_MAGMA)[0, 0, ::-1]  # noqa: E731
    for index, tile in enumerate(tiles):
        body = tile[12: size - 1 - BANNER]  # between the audio bar's band and the text band
        if index == 1:  # the square's 8-px blocks (56-95) amplified to the top of the scale (x127.5 = 1 / (2/255))
            assert (tile[56:96, 56:96] == magma(255)).all() and (body[:, 104:] == magma(0)).all()
            assert (body[:48 - 12] == magma(0)).all()  # no change above the square's blocks
        else:
            assert (body == magma(0)).all()  # black: no change
        bar = (tile[2:8] == AUDIO_BAR_COLOUR).all(axis=-1)
        assert bar.all() if index == 2 else not bar.any()  # only segment 3's audio changed, full length: the strongest


def test_the_trace_draws_the_feature_statistics_of_the_temporal_and_modality_attacks(analysis):
    trace = Trace(loss=np.linspace(1, 2, 4), predicted=np.zeros(4, int), confidence=np.full(4, 0.5),
                  label_probability=np.full(4, 0.4), temporal_variance=np.array([0.3, 0.2, 0.1, 0.05]),
                  modality_cosine=np.array([0.9, 0.8, 0.7, 0.6]))
    figure = trace_figure(dataclasses.replace(analysis, attack="tma", trace=trace))
    names = [item.name for item in figure.data]
    assert names == ["attack objective", "P(label attacked)", "P(predicted class)",
                     "how much the features change over time", "audio-visual agreement (cosine)"]
    variance, cosine = figure.data[3], figure.data[4]
    assert list(variance.y) == [0.3, 0.2, 0.1, 0.05] and list(cosine.y) == [0.9, 0.8, 0.7, 0.6]
    assert variance.xaxis == cosine.xaxis == "x2" and variance.yaxis != cosine.yaxis  # a second panel, two scales
    no_cosine = dataclasses.replace(trace, modality_cosine=np.full(4, np.nan))  # a model without both features
    assert [item.name for item in trace_figure(dataclasses.replace(analysis, attack="tia", trace=no_cosine)).data][3:] == [
        "how much the features change over time"]
    assert len(trace_figure(dataclasses.replace(analysis, attack="pgd", trace=trace)).data) == 3  # no feature panel
    assert trace_figure(dataclasses.replace(analysis, trace=None)) is None  # no attack, no trace


def test_the_summary_says_whether_an_attack_crafted_elsewhere_transferred(analysis):
    true = analysis.classes[analysis.label]
    other = next(name for name in analysis.classes if name != true)
    one = lambda name: np.eye(len(analysis.classes))[analysis.classes.index(name)]  # noqa: E731
    surrogate = dataclasses.replace(analysis, model_name="av-sum", clean_probabilities=one(true),
                                    attacked_probabilities=one(other))
    kept = dataclasses.replace(analysis, model_name="av-concat", clean_probabilities=one(true),
                               attacked_probabilities=one(true), surrogate=surrogate)
    assert transfer_sentence(kept) == (f"Crafted on av-sum (white-box: fooled, {true} → {other}); on av-concat, never "
                                       f"touched by the attacker: not fooled, {true} → {true}.")
    fooled = dataclasses.replace(kept, attacked_probabilities=one(other))
    assert transfer_sentence(fooled).endswith(f"never touched by the attacker: fooled, {true} → {other}.")
    assert f"**{transfer_sentence(fooled)}**" in summary_markdown(fooled)
    assert "wrong already on the clean clip" in transfer_sentence(dataclasses.replace(kept, clean_probabilities=one(other)))
    assert transfer_sentence(analysis) is None


def test_a_masked_clip_says_what_was_hidden_and_what_masking_a_frame_means(analysis):
    assert len(analysis.clip.frames) == 4
    masking = Masking(share=0.05, mode="visual", seed=3, units=20, frames=np.array([False, True, False, False]),
                      samples=np.zeros(len(analysis.clip.waveform), bool))
    masked = dataclasses.replace(analysis, attack="masking", trace=None, objectives=[], winner="", settings=None,
                                 masking=masking)
    sentence = masking_sentence(masked)
    assert sentence.startswith("No attack: 5% of the clip's time masked in the video only (1 of 20 windows of 5%, draw 3): "
                               "frame 2 of 4 replaced by the ImageNet-mean frame")
    assert "0% of the sound silenced" in sentence
    assert "With 4 frames (at 12.5%, 37.5%, 62.5%, 87.5% of the clip) a masked window silences 0.30 s of sound" in sentence
    summary = summary_markdown(masked)
    assert "once masked" in summary and sentence in summary and "segments masked" in localization_verdict(masked)
    assert masking_sentence(analysis) is None
