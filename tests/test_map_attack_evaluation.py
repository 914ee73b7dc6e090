"""The evaluation of the attacks on the map: budgets at an SNR, per-clip success, summaries with
intervals, and one real clip measured end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avdemo.evaluation import map_attacks
from avdemo.lab.ui import example_paths, load_input, model_frames
from avdemo.measures.perceptibility import snr_db
from avdemo.zoo import list_models


def test_an_snr_condition_gives_each_clip_a_budget_no_perturbation_can_exceed():
    rng = np.random.default_rng(0)
    for level in (0.02, 0.3):
        waveform = (level * rng.standard_normal(4000)).astype(np.float32)
        eps = map_attacks.CONDITIONS["audio SNR 30 dB"].settings(waveform, seed=0).eps_audio
        loudest = eps * np.sign(rng.standard_normal(4000))  # the largest perturbation inside the ball
        assert snr_db(waveform, loudest) == pytest.approx(30, abs=0.01)
    settings = map_attacks.CONDITIONS["visual 4/255 (visible)"].settings(waveform, seed=3)
    assert settings.eps_audio == 0 and settings.eps_visual == pytest.approx(4 / 255) and settings.seed == 3


def record(in_box, in_target, pred=1, clean_pred=1, label=1):
    return {"label": label, "clean_pred": clean_pred, "pred": pred, "in_box": in_box, "in_target": in_target,
            "clean_in_box": [True] * len(in_box), "clean_in_target": [False] * len(in_box), "snr_db": 31.0}


def test_a_clip_succeeds_on_most_of_its_frames_with_the_class_as_the_attack_wants():
    moved = record([False, False, False, True], [True, True, True, False])
    assert map_attacks.clip_succeeded("map-target", moved) and map_attacks.clip_succeeded("map-away", moved)
    assert not map_attacks.clip_succeeded("map-target", {**moved, "pred": 2})  # the class was to stay
    assert not map_attacks.clip_succeeded("map-target", record([False] * 4, [True, True, False, False]))  # half is not most
    kept = record([True] * 4, [False] * 4, pred=2)
    assert map_attacks.clip_succeeded("class-only", kept) and not map_attacks.clip_succeeded("class-only", {**kept, "pred": 1})
    assert map_attacks.clip_succeeded("pgd", kept) and not map_attacks.clip_succeeded("map-away", kept, clean=True)
    summary = map_attacks.summarise("map-target", [moved] * 3 + [kept])
    assert summary["clips"] == 4 and summary["succeeded"] == 3 and summary["class_kept"] == 0.75
    assert summary["interval"][0] < 0.75 < summary["interval"][1] and summary["verdict_most"] == "inconclusive at 4 clips"
    assert summary["peak_on_silent"] == pytest.approx(9 / 16) and summary["clean_rate"] == 0


@pytest.mark.skipif(not list_models(), reason="needs the shipped model zoo in checkpoints/")
def test_the_plan_and_one_real_clip(monkeypatch):
    plan = map_attacks.default_plan()
    assert plan["av-attention"]["map-target"] == tuple(map_attacks.CONDITIONS)
    assert plan["av-concat"]["class-only"] == map_attacks.CORE
    assert set(plan["av-concat-exfmem"]) == {"map-target", "map-away"} and "av-concat-exfmem-fista" not in plan
    video = next(str(path) for path in example_paths() if path.stem == "cello-beside-violin")
    clip, truth = load_input(video, frames=model_frames("av-attention"))
    waveform, frames = clip.model_inputs()
    sample = {"waveform": waveform[0], "frames": frames[0], "label": torch.tensor(0), "box": torch.from_numpy(truth.box),
              "distractor_box": torch.from_numpy(truth.distractor_box)}
    monkeypatch.setattr(map_attacks, "STEPS", 2)
    result = map_attacks.measure_clip("av-attention", "map-target", map_attacks.CONDITIONS["audio SNR 30 dB"], sample, seed=0)
    segments = len(truth.box)
    assert len(result["in_box"]) == len(result["in_target"]) == len(result["clean_in_box"]) == segments
    assert result["objective"] == "ce" and result["snr_db"] >= 30  # the budget keeps every perturbation 30 dB down


def _result(attack, condition, succeeded, clips=30, model="av-attention", **more):
    from avdemo.evaluation.intervals import most_verdict, wilson_interval

    return {"model": model, "attack": attack, "condition": condition, "succeeded": succeeded, "clips": clips,
            "rate": succeeded / clips, "interval": list(wilson_interval(succeeded, clips)),
            "verdict_most": most_verdict(succeeded, clips), "median_snr_db": 31.0, "peak_on_source": 0.5,
            "clean_peak_on_source": 0.9, "clean_rate": 0.0, **more}


def test_the_findings_follow_their_rules():
    report = {"results": [_result("map-target", map_attacks.HEADLINE, 25), _result("map-away", "both visible", 26),
                          _result("class-only", "both visible", 4)]}
    assert map_attacks.audio_moves_the_map(report)[2] == "holds"
    assert map_attacks.class_and_map_separately(report)[2] == "partly (map without class)"
    report["results"][0] = _result("map-target", map_attacks.HEADLINE, 4)
    report["results"][2] = _result("class-only", "both visible", 27)
    assert map_attacks.audio_moves_the_map(report)[2] == "does not hold"
    assert map_attacks.class_and_map_separately(report)[2] == "holds"
    assert map_attacks.audio_moves_the_map({"results": []})[2] == "not measured"
    page = map_attacks.markdown({**report, "stamp": {"clips": 30}})
    assert "| An audio-only perturbation at SNR ≥ 30 dB moves the map onto a silent object in most clips |" in page
    assert "4/30 (13%, 5%-30%)" in page  # every rate with its clips and its interval
