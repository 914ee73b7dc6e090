"""Every lesson's claim holds on the shipped models: run the configurations the lesson sets up
(as its one-click button sets the controls) on its example, and check the claim."""

from __future__ import annotations

import pytest

from avdemo.data.examples import SCENARIOS
from avdemo.lab.analysis import run
from avdemo.lab.lessons import LESSONS, lesson_for
from avdemo.lab.ui import LESSON_CONTROLS, apply_lesson, attack_settings, example_paths, load_input, model_frames
from avdemo.zoo import list_models

pytestmark = pytest.mark.skipif(not list_models(), reason="needs the shipped model zoo in checkpoints/")


def test_every_example_has_one_lesson():
    assert sorted(lesson.example for lesson in LESSONS) == sorted(scenario.name for scenario in SCENARIOS)
    assert lesson_for("no-such-clip") is None


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.example for lesson in LESSONS])
def test_the_lesson_claim_holds_on_the_shipped_models(lesson):
    video = next(str(path) for path in example_paths() if path.stem == lesson.example)
    controls = dict(zip(LESSON_CONTROLS, apply_lesson(video)))  # what the button sets on the page
    assert controls == lesson.controls()

    def analyse(model, defense, modality):
        clip, truth = load_input(video, frames=model_frames(model, defense))
        settings = attack_settings(modality, controls["eps_audio"], controls["eps_visual"], controls["steps"], 0,
                                   controls["paper"])
        return run(clip, model, defense, controls["attack"], settings, truth=truth)

    first = analyse(controls["model"], controls["defense"], controls["modality"])
    second = analyse(controls["model_b"], controls["defense_b"], controls["modality_b"]) if controls["compare"] else None
    assert lesson.holds(first, second), f"{lesson.example}: the claim '{lesson.claim}' does not hold"
