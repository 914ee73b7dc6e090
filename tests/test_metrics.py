"""Metrics against hand-computed values: perceptibility, Avg / RI, pointing game, cIoU, AUC."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avdemo.measures.localization import (MAP_KINDS, box_mask, ciou, ciou_auc, distractor_hits, localization_maps, map_kind,
                                         pointing_game, upsample)
from avdemo.measures.perceptibility import average_attacked, db_x, linf_255, psnr, relative_improvement, snr_db, ssim
from avdemo.models import AVOutput, ModelConfig, build_model


def test_perceptibility_by_hand():
    assert linf_255(np.array([0.0, -2 / 255, 1 / 255])) == pytest.approx(2.0)
    clean = np.zeros((4, 4, 3))
    assert psnr(clean, clean + 0.1) == pytest.approx(20.0)  # MSE 0.01
    assert psnr(clean, clean) == math.inf
    assert snr_db(np.ones(100), np.full(100, 0.01)) == pytest.approx(40.0)
    assert db_x(np.array([0.5, -1.0]), np.array([0.01, 0.0])) == pytest.approx(-40.0)
    assert snr_db(np.ones(4), np.zeros(4)) == math.inf and db_x(np.ones(4), np.zeros(4)) == -math.inf


def test_ssim_matches_scikit_image():
    skimage = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    clean = rng.random((48, 40, 3))
    noisy = np.clip(clean + 0.1 * rng.standard_normal(clean.shape), 0, 1)
    expected = skimage.structural_similarity(clean, noisy, channel_axis=-1, data_range=1.0)
    assert ssim(clean, noisy) == pytest.approx(expected, abs=1e-9)
    assert ssim(clean, clean) == pytest.approx(1.0)


def test_avg_and_ri_reproduce_the_papers_table_3_music_rows():
    # MIT-MUSIC, FGSM: None 88.46 / 51.92 / 45.19 / 15.38 -> Avg 37.50; MinSim+ExFMem 90.38 / 73.08 / 53.85 / 42.31.
    base_avg = average_attacked(51.92, 45.19, 15.38)
    full_avg = average_attacked(73.08, 53.85, 42.31)
    assert base_avg == pytest.approx(37.50, abs=0.01) and full_avg == pytest.approx(56.41, abs=0.01)
    assert relative_improvement(90.38, full_avg, 88.46, base_avg) == pytest.approx(20.83, abs=0.01)
    assert relative_improvement(59.62, average_attacked(0, 59.62, 0), 88.46, base_avg) == pytest.approx(-46.47, abs=0.02)


def test_pointing_game_and_distractor_peaks():
    maps = np.zeros((3, 10, 10))
    maps[0, 2, 3] = 1  # inside the box
    maps[1, 8, 8] = 1  # on the distractor
    maps[2, 0, 9] = 1  # nowhere
    boxes = np.array([[1, 1, 5, 5]] * 3, float)
    distractors = np.array([[[7, 7, 10, 10], [np.nan] * 4]] * 3, float)
    assert pointing_game(maps, boxes).tolist() == [True, False, False]
    assert distractor_hits(maps, distractors).tolist() == [False, True, False]


def test_ciou_and_auc_by_hand():
    gt = box_mask(np.array([[0, 0, 4, 4]], float), 8)  # 16 pixels
    assert gt.sum() == 16
    heat = np.zeros((1, 8, 8))
    heat[0, :4, :2] = 1.0  # 8 pixels inside the box
    heat[0, 6:, :] = 0.5  # 16 pixels outside
    # Threshold 0.2: predicted = 24 pixels, 8 inside -> 8 / (16 + 16) = 0.25.
    assert ciou(heat, gt, threshold=0.2)[0] == pytest.approx(0.25)
    # Threshold 0.75: predicted = the 8 inside pixels -> 8 / 16.
    assert ciou(heat, gt, threshold=0.75)[0] == pytest.approx(0.5)
    # Median threshold (0): predicted = the 24 non-zero pixels.
    assert ciou(heat, gt)[0] == pytest.approx(0.25)
    # AUC over t = 0, 0.05, ..., 1 of the success rate (share of cIoU >= t) for cIoUs 0.12, 0.33, 0.5, 0.92:
    #   t = 0, 0.05, 0.10       -> 4/4 = 1     (3 thresholds)
    #   t = 0.15 ... 0.30       -> 3/4         (4)
    #   t = 0.35 ... 0.50       -> 2/4         (4; at t = 0.5 the cIoU of 0.5 still counts: >=)
    #   t = 0.55 ... 0.90       -> 1/4         (8)
    #   t = 0.95, 1.0           -> 0           (2)
    # Trapezoids of width 0.05: 0.05 * (sum - (first + last) / 2) = 0.05 * (3 + 3 + 2 + 2 + 0 - 0.5) = 0.475.
    assert ciou_auc(np.array([0.12, 0.33, 0.5, 0.92])) == pytest.approx(0.475, abs=1e-12)
    # All ones: 0.05 * (21 - 1) = 1. All zeros: only t = 0 succeeds: 0.05 * (1 - 0.5) = 0.025.
    assert ciou_auc(np.ones(5)) == pytest.approx(1.0, abs=1e-12)
    assert ciou_auc(np.zeros(5)) == pytest.approx(0.025, abs=1e-12)


def test_maps_follow_the_attention_or_the_audio_visual_similarity():
    attention = torch.zeros(1, 1, 2, 2)
    attention[0, 0, 1, 0] = 1.0
    maps = localization_maps(AVOutput(logits=torch.zeros(1, 2), fused=torch.zeros(1, 2), attention=attention))
    assert maps[0, 0, 1, 0] == 1 and maps[0, 0].sum() == 1
    visual_map = torch.zeros(1, 1, 2, 3, 3)
    visual_map[0, 0, 0, 2, 1] = 1.0  # this cell looks like the sound
    visual_map[0, 0, 1] = 0.5
    output = AVOutput(logits=torch.zeros(1, 2), fused=torch.zeros(1, 2), audio=torch.tensor([[1.0, 0.0]]),
                      audio_segments=torch.tensor([[[1.0, 0.0]]]), visual_map=visual_map)
    maps = localization_maps(output)
    assert maps.shape == (1, 1, 3, 3) and maps[0, 0].argmax() == 7 and maps.max() == 1 and maps.min() == 0
    assert upsample(maps, 12).shape == (1, 1, 12, 12)


@pytest.mark.parametrize("options, kind", [
    ({"kind": "audio"}, None),
    ({"kind": "visual"}, None),
    ({"correspondence": True}, "correspondence"),
    ({"correspondence": True, "attention": True}, "correspondence"),
    ({"attention": True}, "attention"),
    ({}, "feature cosine"),
])
def test_the_map_kind_a_card_names_is_the_map_the_network_draws(options, kind):
    config = ModelConfig(num_classes=3, width=0.125, **options)
    assert map_kind(config) == kind
    torch.manual_seed(0)
    output = build_model(config).eval()(torch.rand(1, 11025) * 2 - 1, torch.rand(1, 2, 3, 32, 32))
    drawn = ("correspondence" if output.cell_embedding is not None else "attention" if output.attention is not None
             else "feature cosine" if output.audio_segments is not None and output.visual_map is not None else None)
    assert drawn == kind
    if kind is not None:
        assert kind in MAP_KINDS and localization_maps(output).shape[:2] == (1, 2)
