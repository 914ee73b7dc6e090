"""Training procedures: PGD-AT, the ICLR 2025 efficient adversarial training with its curriculum,
multimodal mixup; robust validation points and a resume from the middle of an epoch."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from avdemo.attacks.budgets import named_budget
from avdemo.data.shards import ClipRecord, write_split
from avdemo.defenses import DEFENSES, create_procedure
from avdemo.defenses.adversarial_training import sample_segments, share_perturbation, training_budget
from avdemo.defenses.curriculum import Curriculum
from avdemo.models.segments import segment_waveform
from avdemo.training.train import TrainConfig, build_for_training, train, validation_steps

from toy_task import NUM_CLASSES, toy_batch, train_toy_model

FRAMES = 4


@pytest.fixture(scope="module")
def clip_shards(tmp_path_factory):
    """The toy task with 4 frames per clip (4 x 4096 samples), 64 train and 16 val clips."""
    root = tmp_path_factory.mktemp("toy-clips")
    for split, count, seed in (("train", 64, 1), ("val", 16, 2)):
        waveform, frames, labels = toy_batch(count, seed=seed, frames_per_clip=FRAMES)
        pixels = (frames.permute(0, 1, 3, 4, 2) * 255).round().to(torch.uint8).numpy()
        records = [ClipRecord(pixels[i], waveform[i].numpy(), int(labels[i])) for i in range(count)]
        write_split(root / split, records, [f"c{k}" for k in range(NUM_CLASSES)], source={"toy": True})
    return root


def _config(shards, **changes) -> TrainConfig:
    settings = dict(name="tiny", architecture="av-concat", width=1 / 16, dataset="shards", shards=str(shards),
                    frames=FRAMES, epochs=1, batch_size=8, lr_audio=0.01, lr_visual=0.01, lr_head=0.01,
                    eval_batch_size=16, robust_val_per_class=2, mixup_reference_per_class=4, mixup_convexity_points=8)
    return TrainConfig(**{**settings, **changes})


@pytest.mark.parametrize("defense", ["pgd-at", "avat", "mixup"])
def test_one_training_step_per_procedure(clip_shards, tmp_path, defense):
    config = _config(clip_shards, defense=defense, select_by="robust" if defense != "mixup" else "clean",
                     eps_warmup=0.0)
    run = train(config, tmp_path / "run", "cpu", max_steps=2, log=lambda *_: None)
    state = json.loads((run / "state.json").read_text())
    assert DEFENSES[defense].kind == "training procedure"
    point = state["run"]["validations"][-1]
    assert point["step"] == 2 and ("robust_val_accuracy" in point) == (defense != "mixup")
    assert 0 <= point.get("robust_val_accuracy", 0) <= point["val_accuracy"] + 1e-9 or defense == "mixup"
    assert state["procedure"] and state["run"]["best_val"] == point.get("robust_val_accuracy", point["val_accuracy"])
    torch.manual_seed(config.seed)
    start = build_for_training(config, NUM_CLASSES)
    assert not torch.equal(start.state_dict()["classifier.weight"], load_file(str(run / "best.safetensors"))["classifier.weight"])
    if defense == "mixup":
        statistics = state["procedure"]
        assert len(statistics["alpha"]) == NUM_CLASSES
        assert all(config.mixup_alpha_low <= a <= config.mixup_alpha_high for a in statistics["alpha"])


@pytest.fixture(scope="module")
def toy_model():
    return train_toy_model(steps=60).eval()


def _clips(count=4):
    return toy_batch(count, seed=5, frames_per_clip=FRAMES)


def test_pgd_training_inputs_stay_in_the_budget_and_warm_up(toy_model, clip_shards):
    waveform, frames, labels = _clips()
    procedure = create_procedure("pgd-at", _config(clip_shards, defense="pgd-at", eps_warmup=0.5))
    budget = named_budget("visible")
    at_start = procedure.inputs(toy_model, waveform, frames, labels, position=0.0)
    assert torch.equal(at_start[0], waveform) and torch.equal(at_start[1], frames)
    for position, share in ((0.25, 0.5), (0.9, 1.0)):
        adv_waveform, adv_frames = procedure.inputs(toy_model, waveform, frames, labels, position)
        audio, visual = (adv_waveform - waveform).abs().max().item(), (adv_frames - frames).abs().max().item()
        assert 0.5 * share * budget.audio < audio <= share * budget.audio + 1e-6
        assert visual <= share * budget.visual + 1e-6 and visual > 0
    assert toy_model.training is False  # crafting leaves the model's mode as it found it


def test_training_steps_reach_the_ball_in_few_steps(clip_shards):
    settings = training_budget(_config(clip_shards), 1.0, 3, "pgd")
    assert settings.random_start and settings.steps == 3
    assert settings.step_audio == pytest.approx(2.5 * settings.eps_audio / 3)
    assert training_budget(_config(clip_shards), 1.0, 1, "tma").step_audio == settings.eps_audio  # capped at eps


def test_segments_are_sampled_per_group_and_perturbations_shared():
    generator = torch.Generator().manual_seed(0)
    chosen = sample_segments(steps=4, group=2, share=0.5, batch=3, generator=generator)
    assert chosen.shape == (3, 2, 1)
    assert ((chosen[:, 0] < 2).all() and (chosen[:, 1] >= 2).all())
    waveform = torch.zeros(2, 4 * 4096)
    frames = torch.full((2, 4, 3, 8, 8), 0.5)
    delta_windows = torch.stack([torch.full((2, 4096), 0.01), torch.full((2, 4096), -0.02)], dim=1)
    delta_frames = torch.stack([torch.full((2, 3, 8, 8), 0.03), torch.full((2, 3, 8, 8), -0.04)], dim=1)
    adv_waveform, adv_frames = share_perturbation(waveform, frames, delta_windows, delta_frames, group=2)
    windows = segment_waveform(adv_waveform, 4)
    for t, (audio, visual) in enumerate(((0.01, 0.03), (0.01, 0.03), (-0.02, -0.04), (-0.02, -0.04))):
        assert torch.allclose(windows[:, t], torch.full_like(windows[:, t], audio))
        assert torch.allclose(adv_frames[:, t] - frames[:, t], torch.full_like(frames[:, t], visual))


def test_efficient_crafting_shares_one_perturbation_per_group(toy_model, clip_shards):
    waveform, frames, labels = _clips()
    config = _config(clip_shards, defense="avat", segment_frames=2, sample_share=0.5, eps_warmup=0.0, copies=1)
    adv_waveform, adv_frames = create_procedure("avat", config).inputs(toy_model, waveform, frames, labels, 0.99)
    delta = adv_frames - frames
    budget = named_budget("visible")
    assert delta.abs().max() <= budget.visual + 1e-6 and delta.abs().max() > 0
    inside = (frames > 0.05) & (frames < 0.95)  # where clamping to [0, 1] cannot differ between frames
    for first, second in ((0, 1), (2, 3)):
        both = inside[:, first] & inside[:, second]
        assert torch.allclose(delta[:, first][both], delta[:, second][both], atol=1e-6)
    assert not torch.allclose(delta[:, 0], delta[:, 2])
    windows = segment_waveform(adv_waveform - waveform, FRAMES)
    assert (adv_waveform - waveform).abs().max() <= budget.audio + 1e-6
    assert torch.allclose(windows[:, 0, 100:-100], windows[:, 1, 100:-100], atol=1e-6)


@pytest.mark.parametrize("schedule, start, middle, end", [
    ("constant", 0.20, 0.20, 0.20),
    ("linear", 0.05, 0.125, 0.20),
    ("cosine", 0.05, 0.125, 0.20),
])
def test_curriculum_ratio_at_the_start_middle_and_end_of_a_cycle(schedule, start, middle, end):
    curriculum = Curriculum(schedule, 0.05, 0.20, cycles=4, min_steps=1, max_steps=3)
    cycle = 1 / 4
    assert curriculum.ratio(cycle * 1) == pytest.approx(start)  # a new cycle starts easy again
    assert curriculum.ratio(cycle * 1.5) == pytest.approx(middle)
    assert curriculum.ratio(cycle * 2 - 1e-9) == pytest.approx(end, abs=1e-6)
    assert [curriculum.steps(cycle * (1 + u)) for u in (0.0, 0.5, 0.99)] == [1, 2, 3]
    if schedule == "cosine":  # slower than linear early in the cycle, faster late
        assert curriculum.ratio(cycle * 1.25) == pytest.approx(0.05 + 0.15 * (1 - math.cos(math.pi / 4)) / 2)
        assert curriculum.ratio(cycle * 1.25) < Curriculum("linear").ratio(cycle * 1.25)


def test_curriculum_refuses_impossible_settings():
    with pytest.raises(ValueError, match="schedule"):
        Curriculum("exponential")
    with pytest.raises(ValueError, match="low <= high"):
        Curriculum(low=0.3, high=0.2)


def test_validation_points_are_even_and_end_the_epoch():
    assert validation_steps(8, 4) == {2, 4, 6, 8}
    assert validation_steps(5, 1) == {5}
    assert validation_steps(3, 10) == {1, 2, 3}


class _Stop(Exception):
    pass


def test_a_run_stopped_mid_epoch_resumes_at_its_last_validation_point(clip_shards, tmp_path):
    config = _config(clip_shards, epochs=2, validations_per_epoch=4, defense="pgd-at", select_by="robust")
    calls = []

    def stop_at_first_point(message):
        calls.append(message)
        raise _Stop

    with pytest.raises(_Stop):
        train(config, tmp_path / "run", "cpu", log=stop_at_first_point)
    stopped = json.loads((tmp_path / "run" / "state.json").read_text())["run"]
    assert (stopped["epoch"], stopped["step"], len(stopped["validations"])) == (0, 2, 1)
    train(config, tmp_path / "run", "cpu", resume=True, log=lambda *_: None)
    state = json.loads((tmp_path / "run" / "state.json").read_text())["run"]
    assert [(p["epoch"], p["step"]) for p in state["validations"]] == [(1, 2), (1, 4), (1, 6), (1, 8),
                                                                         (2, 2), (2, 4), (2, 6), (2, 8)]
    assert state["validations"][0] == stopped["validations"][0]
    times = [p["train_seconds"] for p in state["validations"]]
    assert times == sorted(times) and len(state["history"]) == 2
    assert state["best_val"] == max(p["robust_val_accuracy"] for p in state["validations"])


def test_fine_tuning_starts_from_the_whole_model(clip_shards, tmp_path):
    base = train(_config(clip_shards), tmp_path / "base", "cpu", max_steps=1, log=lambda *_: None)
    model = build_for_training(_config(clip_shards, init_model=str(base), init_audio="x-ignored"), NUM_CLASSES)
    source = load_file(str(base / "best.safetensors"))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, source[key])
