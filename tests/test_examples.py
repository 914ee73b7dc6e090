"""The shipped example videos: playable H.264 + AAC, ~6 s, with ground truth that matches them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avdemo.data.examples import EXAMPLES_DIR, SCENARIOS
from avdemo.media import decode_clip

VIDEOS = sorted(EXAMPLES_DIR.glob("*.mp4"))


def test_every_scenario_is_shipped_within_budget():
    assert {p.stem for p in VIDEOS} == {s.name for s in SCENARIOS}
    assert 10 <= len(VIDEOS) <= 16
    total = sum(p.stat().st_size for p in EXAMPLES_DIR.parent.rglob("*") if p.is_file())
    assert total <= 6 * 2**20
    attribution = (EXAMPLES_DIR.parent / "ATTRIBUTION.md").read_text()
    for video in VIDEOS:
        sources = json.loads(video.with_suffix(".json").read_text())["sources"]
        assert sources["sprite"] in attribution and sources["background"] in attribution


@pytest.mark.parametrize("video", VIDEOS, ids=[p.stem for p in VIDEOS])
def test_example_decodes_and_its_ground_truth_fits(video: Path):
    truth = json.loads(video.with_suffix(".json").read_text())
    clip = decode_clip(video, num_frames=1)
    assert (clip.info.video_codec, clip.info.audio_codec) == ("h264", "aac")
    assert clip.info.duration == pytest.approx(5.94, abs=0.1) and clip.has_audio
    assert truth["label"] == truth["classes"][truth["label_index"]]
    frame = int(np.argmin(np.abs(np.array(truth["frame_times"]) - clip.frame_times[0])))
    x0, y0, x1, y1 = truth["box"][frame]
    assert 0 <= x0 < x1 <= 224 and 0 <= y0 < y1 <= 224
    for distractor in truth["distractors"]:
        assert distractor["label"] != truth["label"]
    # The sounding object differs from the background around it: its box is not empty scenery.
    inside = clip.frames[0][int(y0):int(y1), int(x0):int(x1)].astype(float)
    assert inside.std() > 10


@pytest.mark.skipif(not (Path(__file__).resolve().parents[1] / "checkpoints" / "av-attention.json").is_file(),
                    reason="needs the shipped av-attention")
def test_examples_are_scored_as_the_app_sees_them():
    from avdemo.evaluation.sound_following import measure_examples
    from avdemo.zoo import load_model, read_card

    card = read_card("av-attention")
    frames = card.data["data"]["frames"]
    scores = measure_examples(load_model("av-attention").eval(), card.classes, frames)
    assert scores["examples"] == len(SCENARIOS) and set(scores["each"]) == {s.name for s in SCENARIOS}
    for name, example in scores["each"].items():
        assert example["label"] == json.loads((EXAMPLES_DIR / f"{name}.json").read_text())["label"]
        assert example["predicted"] in card.classes and 0 <= example["frames_in_box"] <= frames
        assert example["right"] == (example["predicted"] == example["label"] and example["frames_in_box"] > frames / 2)
    assert scores["right"] == sum(example["right"] for example in scores["each"].values())
