"""Black-box transfer and masking in the lab, on the shipped checkpoints: an attack crafted on one
model (white-box there) and judged on another that the attacker never touched, the same choice
left at "the same model" being the plain white-box run, and a clip masked without any attack;
both recorded so that `python -m avdemo.lab.replay` makes them again."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avdemo.attacks import create_attack
from avdemo.data.masking import IMAGENET_MEAN, draw_mask
from avdemo.lab import analysis as lab
from avdemo.lab.analysis import MASKING, cached_model, run, run_masking
from avdemo.lab.export import RECORD, bundle_arrays, model_inputs, write_bundle
from avdemo.lab.replay import main as replay_main
from avdemo.lab.ui import attack_settings, example_paths, load_input, model_frames
from avdemo.zoo import entry_digest, list_models

pytestmark = pytest.mark.skipif(not list_models(), reason="needs the shipped model zoo in checkpoints/")
EXAMPLE = str(example_paths()[3])  # cello beside a silent violin
SETTINGS = attack_settings("both", 0.01, 4, 1, 0, False)  # one step of PGD from a seeded random start


@pytest.fixture(scope="module")
def clip():
    return load_input(EXAMPLE, frames=model_frames("av-concat"))


@pytest.fixture(scope="module")
def transfer(clip):
    return run(clip[0], "av-concat", "none", "pgd", SETTINGS, truth=clip[1], craft_on="av-sum")


def probabilities(model: str, waveform: torch.Tensor, frames: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return cached_model(model)(waveform, frames).logits[0].softmax(-1).numpy()


def test_an_attack_crafted_on_another_model_is_that_models_input_judged_on_the_one_shown(clip, transfer):
    video, truth = clip
    waveform, frames = video.model_inputs()
    label = torch.tensor([transfer.classes.index(truth.label)])
    crafted = create_attack("pgd", cached_model("av-sum"), SETTINGS)(waveform, frames, label)  # the attack itself, on av-sum
    adversarial = model_inputs(bundle_arrays(transfer))
    torch.testing.assert_close(adversarial, (crafted.waveform, crafted.frames), rtol=0, atol=0)  # bit-identical
    assert transfer.model_name == "av-concat" and [o.name for o in transfer.objectives] == ["transfer:av-sum"]
    np.testing.assert_allclose(transfer.attacked_probabilities, probabilities("av-concat", *adversarial), atol=1e-5)
    np.testing.assert_allclose(transfer.clean_probabilities, probabilities("av-concat", waveform, frames), atol=1e-5)
    attacker = transfer.surrogate  # what the attacker saw: the same input on av-sum, white-box
    assert attacker.model_name == "av-sum" and attacker.surrogate is None and attacker.winner == "ce"
    np.testing.assert_allclose(attacker.attacked_probabilities, crafted.output.logits[0].softmax(-1).numpy(), atol=1e-5)
    np.testing.assert_array_equal(attacker.adversarial_frames, transfer.adversarial_frames)
    np.testing.assert_array_equal(transfer.trace.loss, crafted.trace.loss[:, 0].numpy())  # the crafting's trace
    assert not np.allclose(attacker.attacked_probabilities, transfer.attacked_probabilities)  # two models judged it


def test_crafting_on_the_model_shown_is_the_white_box_run(clip, transfer):
    same = run(clip[0], "av-sum", "none", "pgd", SETTINGS, truth=clip[1], craft_on="av-sum")  # as "the same model"
    assert same.surrogate is None and [o.name for o in same.objectives] == ["ce"] and same.label == transfer.label
    # the attack on av-sum itself (the transfer's input is that, as the test above shows), judged on av-sum
    np.testing.assert_array_equal(same.adversarial_frames, transfer.adversarial_frames)
    np.testing.assert_array_equal(same.adversarial_waveform, transfer.adversarial_waveform)
    np.testing.assert_allclose(same.attacked_probabilities, transfer.surrogate.attacked_probabilities, atol=1e-6)


def test_a_model_that_cannot_be_crafted_on_is_refused(clip, monkeypatch):
    with pytest.raises(ValueError, match="no such model"):
        run(clip[0], "av-concat", craft_on="av-nothing")
    describe = lab.describe
    other_classes = lambda name: {**describe(name), "classes": describe(name)["classes"][::-1]} if name == "av-sum" \
        else describe(name)  # noqa: E731
    monkeypatch.setattr(lab, "describe", other_classes)
    with pytest.raises(ValueError, match="same class list"):
        run(clip[0], "av-concat", craft_on="av-sum")


def test_a_masked_clip_is_the_drawn_mask_and_the_models_own_predictions(clip):
    video, truth = clip
    masked = run_masking(video, "av-concat", "none", 0.25, "both-async", 3, truth)
    drawn = draw_mask(1, 0.25, "both", synchronous=False, generator=3)
    steps, length = len(video.frames), len(video.waveform)
    np.testing.assert_array_equal(masked.masking.frames, drawn.frame_mask(steps)[0].numpy())
    np.testing.assert_array_equal(masked.masking.samples, drawn.sample_mask(length)[0].numpy())
    assert masked.masking.frames.tolist() == [True, False, False, True] and masked.masking.samples.mean() == \
        pytest.approx(0.25, abs=1e-3)  # this draw hides frames 1 and 4, and 5 of 20 windows of sound
    np.testing.assert_array_equal(masked.adversarial_waveform, np.where(masked.masking.samples, 0, video.waveform))
    hidden = masked.masking.frames
    np.testing.assert_allclose(masked.adversarial_frames[hidden], np.broadcast_to(IMAGENET_MEAN, (2, 224, 224, 3)), atol=1e-7)
    np.testing.assert_array_equal(masked.adversarial_frames[~hidden], video.frames[~hidden].astype(np.float32) / 255)
    assert masked.attack == MASKING and masked.trace is None and masked.objectives == [] and masked.settings is None
    np.testing.assert_allclose(masked.attacked_probabilities,
                               probabilities("av-concat", *model_inputs(bundle_arrays(masked))), atol=1e-5)
    with pytest.raises(ValueError, match="unknown masking mode"):
        run_masking(video, "av-concat", mode="sideways")
    with pytest.raises(ValueError, match="a percentage"):
        run_masking(video, "av-concat", share=20)


def test_replay_makes_a_transfer_and_a_masking_again(clip, transfer, tmp_path, capsys):
    masked = run_masking(clip[0], "av-concat", "none", 0.1, "audio", 2, clip[1])
    for name, analysis, attack, settings in (("transfer", transfer, "pgd", transfer.settings),
                                             ("masked", masked, MASKING, None)):
        folder = tmp_path / name
        write_bundle(analysis, folder, "av-concat", "none", attack, settings, None, {"video": EXAMPLE})
        record = json.loads((folder / RECORD).read_text())
        replay_main([str(folder / RECORD), "--out", str(tmp_path / f"{name}-again")])
        assert "bit-identical" in capsys.readouterr().out
    transfer_record = json.loads((tmp_path / "transfer" / RECORD).read_text())
    assert transfer_record["craft_on"] == "av-sum" and transfer_record["craft_on_sha256"] == entry_digest("av-sum")
    assert transfer_record["masking"] is None and transfer_record["winning_objective"] == "transfer:av-sum"
    assert record["masking"] == {"share": 0.1, "mode": "audio", "seed": 2} and record["settings"] is None
    assert record["craft_on"] is None and record["attack"] == MASKING
