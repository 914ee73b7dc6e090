"""Attacks: invariants (property tests), an outside oracle (torchattacks), real effect."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from avdemo.attacks.fgsm import FGSM
from avdemo.attacks import (
    PAPER_EPS_BOTH,
    PAPER_EPS_SINGLE,
    AttackSettings,
    attack_parameters,
    available_attacks,
    create_attack,
    paper_preset,
)
from avdemo.models import IMAGENET_STD, ModelConfig, build_model

from toy_task import NUM_CLASSES, accuracy, toy_batch, train_toy_model

REGION = ((0.0, 0.0, 0.5, 0.5),)  # for the map attacks' target; the other attacks ignore it
MODALITY_BUDGETS = {
    "audio": lambda e: dict(eps_audio=e),
    "visual": lambda e: dict(eps_visual=e),
    "both": lambda e: dict(eps_audio=e, eps_visual=e),
}


@pytest.fixture(scope="module")
def trained():
    return train_toy_model()


@pytest.fixture(scope="module")
def untrained():
    return build_model(ModelConfig(num_classes=NUM_CLASSES, width=1 / 16)).eval()


def _check_invariants(result, waveform, frames, eps_audio, eps_visual):
    eps_visual = torch.as_tensor(eps_visual).view(1, 1, -1, 1, 1) if torch.as_tensor(eps_visual).dim() else eps_visual
    assert (result.waveform - waveform).abs().max() <= torch.as_tensor(eps_audio) + 1e-6
    assert ((result.frames - frames).abs() <= torch.as_tensor(eps_visual) + 1e-6).all()
    assert result.waveform.min() >= -1 and result.waveform.max() <= 1
    assert result.frames.min() >= 0 and result.frames.max() <= 1
    if not torch.as_tensor(eps_audio).any():
        assert torch.equal(result.waveform, waveform)
    if not torch.as_tensor(eps_visual).any():
        assert torch.equal(result.frames, frames)
    torch.testing.assert_close(result.delta_waveform, result.waveform - waveform, rtol=0, atol=0)
    torch.testing.assert_close(result.delta_frames, result.frames - frames, rtol=0, atol=0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(available_attacks()),
    modality=st.sampled_from(sorted(MODALITY_BUDGETS)),
    eps=st.floats(1e-4, 0.3),
    step_ratio=st.floats(0.05, 2.0),
    steps=st.integers(1, 4),
    extreme=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_every_attack_stays_in_its_ball_and_range_and_spares_the_other_modality(
    untrained, name, modality, eps, step_ratio, steps, extreme, seed
):
    """Every registered attack, whatever settings it reads (one settings object serves all)."""
    waveform, frames, labels = toy_batch(3, seed=seed, frames_per_clip=2)
    if extreme:  # inputs at the edges of the valid range, where clamping matters
        waveform, frames = waveform.sign(), (frames > 0.5).float()
    budgets = MODALITY_BUDGETS[modality](eps)
    settings = AttackSettings(**budgets, steps=steps, random_start=True, seed=seed, target_region=REGION,
                              **{k.replace("eps", "step"): v * step_ratio for k, v in budgets.items()})
    result = create_attack(name, untrained, settings)(waveform, frames, labels)
    _check_invariants(result, waveform, frames, budgets.get("eps_audio", 0.0), budgets.get("eps_visual", 0.0))


@pytest.mark.parametrize("name", available_attacks())
def test_paper_preset_keeps_per_channel_pixel_budgets(untrained, name):
    waveform, frames, labels = toy_batch(4, seed=3)
    preset = paper_preset("visual").replace(target_region=REGION)
    result = create_attack(name, untrained, preset)(waveform, frames, labels)
    _check_invariants(result, waveform, frames, 0.0, preset.eps_visual)
    assert (result.frames != frames).any()  # the preset really attacked the frames


def test_paper_preset_is_the_reference_threat_model():
    both = paper_preset("both")
    assert both.eps_audio == PAPER_EPS_BOTH == 0.006
    assert both.eps_visual == pytest.approx([0.006 * s for s in IMAGENET_STD])
    assert both.step_audio is None and both.steps == 10 and both.decay == 1.0  # steps default to eps / 8
    single = paper_preset("audio")
    assert single.eps_audio == PAPER_EPS_SINGLE and single.eps_visual == 0.0
    assert single.random_start is False
    # ~0.35/255 in pixel units: far below one grey level.
    assert max(both.eps_visual) * 255 == pytest.approx(0.35, abs=0.01)


@pytest.mark.parametrize("name", [n for n in available_attacks() if "steps" in attack_parameters(n)])
def test_iterative_attacks_default_to_steps_of_an_eighth_of_eps(untrained, name):
    attack = create_attack(name, untrained, paper_preset("both").replace(target_region=REGION))
    assert float(attack.step_size["audio"]) == pytest.approx(0.006 / 8)
    assert attack.steps == 10


class _FramesOnly(nn.Module):
    """torchattacks attacks one image tensor: fix the audio and expose (N, 3, H, W) -> logits.
    Used in eval mode: torchattacks restores the wrapper's mode, and with it the model's."""

    def __init__(self, model, waveform):
        super().__init__()
        self.model, self.waveform = model, waveform

    def forward(self, images):
        return self.model(self.waveform, images.unsqueeze(1)).logits


@pytest.mark.parametrize(
    "ours,theirs,kwargs",
    [
        ("fgsm", "FGSM", dict(eps=8 / 255)),
        ("pgd", "PGD", dict(eps=8 / 255, alpha=2 / 255, steps=10, random_start=False)),
        ("ifgsm", "BIM", dict(eps=4 / 255, alpha=1 / 255, steps=5)),
        ("mim", "MIFGSM", dict(eps=8 / 255, alpha=2 / 255, steps=10, decay=1.0)),
    ],
)
def test_visual_attacks_match_torchattacks(trained, ours, theirs, kwargs):
    torchattacks = pytest.importorskip("torchattacks")
    waveform, frames, labels = toy_batch(16, seed=5)
    oracle = getattr(torchattacks, theirs)(_FramesOnly(trained, waveform).eval(), **kwargs)
    expected = oracle(frames[:, 0], labels)
    ours_kwargs = dict(eps_visual=kwargs["eps"])
    if ours != "fgsm":
        ours_kwargs.update(step_visual=kwargs["alpha"], steps=kwargs["steps"])
    if ours == "mim":
        ours_kwargs.update(decay=kwargs["decay"])
    result = create_attack(ours, trained, **ours_kwargs)(waveform, frames, labels)
    assert (result.frames[:, 0] - expected).abs().max() <= 1e-6
    assert torch.equal(result.waveform, waveform)
    assert (expected - frames[:, 0]).abs().max() > 0  # the oracle really moved the frames


@pytest.mark.parametrize("name", ["pgd", "mim"])
def test_attacks_drive_a_trained_model_far_below_clean_accuracy(trained, name):
    waveform, frames, labels = toy_batch(64, seed=11)
    clean = accuracy(trained, waveform, frames, labels)
    result = create_attack(name, trained, eps_audio=0.03, eps_visual=8 / 255, steps=10)(waveform, frames, labels)
    attacked = accuracy(trained, result.waveform, result.frames, labels)
    assert clean >= 0.95
    assert attacked <= 0.1


def test_single_modality_pgd_hurts_less_than_both(trained):
    waveform, frames, labels = toy_batch(64, seed=12)
    results = {
        modality: accuracy(trained, r.waveform, r.frames, labels)
        for modality, kwargs in MODALITY_BUDGETS.items()
        for r in [create_attack("pgd", trained, **kwargs(0.01), steps=10)(waveform, frames, labels)]
    }
    # At this budget one modality alone leaves the model mostly right, both together do not:
    # the comparison is between numbers that can differ, not between zeros.
    assert min(results["audio"], results["visual"]) >= 0.5
    assert results["both"] < min(results["audio"], results["visual"]) - 0.2


def test_targeted_mode_reaches_the_target(trained):
    waveform, frames, labels = toy_batch(32, seed=13)
    targets = (labels + 1) % NUM_CLASSES
    attack = create_attack("pgd", trained, eps_audio=0.05, eps_visual=12 / 255, steps=20, targeted=True)
    result = attack(waveform, frames, targets)
    hit = (result.output.logits.argmax(-1) == targets).float().mean().item()
    assert hit >= 0.8
    assert (result.trace.label_probability[-1] > result.trace.label_probability[0]).all()


def test_extra_loss_term_is_attacked_too(trained):
    waveform, frames, labels = toy_batch(16, seed=14)

    def similarity(output, _labels):
        return 50 * torch.cosine_similarity(output.audio, output.visual, dim=-1)

    plain = create_attack("pgd", trained, eps_audio=0.02, eps_visual=4 / 255)(waveform, frames, labels)
    adaptive = create_attack("pgd", trained, eps_audio=0.02, eps_visual=4 / 255, extra_loss=similarity)(
        waveform, frames, labels
    )
    cos = lambda out: torch.cosine_similarity(out.audio, out.visual, dim=-1).mean()  # noqa: E731
    assert cos(adaptive.output) > cos(plain.output) + 0.05


def test_trace_records_clean_then_every_step(trained):
    waveform, frames, labels = toy_batch(5, seed=15)
    result = create_attack("mim", trained, eps_audio=0.03, eps_visual=8 / 255, steps=7)(waveform, frames, labels)
    trace = result.trace
    for field in (trace.loss, trace.predicted, trace.confidence, trace.label_probability):
        assert field.shape == (8, 5)
    with torch.no_grad():
        clean_logits = trained(waveform, frames).logits
    assert torch.equal(trace.predicted[0], clean_logits.argmax(-1))
    assert torch.equal(trace.predicted[-1], result.output.logits.argmax(-1))
    assert trace.loss[-1].mean() > trace.loss[0].mean()
    assert ((trace.confidence >= trace.label_probability - 1e-6) & (trace.confidence <= 1)).all()


def test_on_step_hears_every_step_and_can_stop_the_attack(untrained):
    waveform, frames, labels = toy_batch(2, seed=17)
    heard = []
    create_attack("pgd", untrained, eps_audio=0.01, steps=4)(waveform, frames, labels, on_step=lambda *a: heard.append(a))
    assert heard == [(1, 4), (2, 4), (3, 4), (4, 4)]

    def stop_at_two(done, total):
        if done == 2:
            raise TimeoutError("cap")

    untrained.train()
    with pytest.raises(TimeoutError, match="cap"):
        create_attack("mim", untrained, eps_visual=0.03, steps=5)(waveform, frames, labels, on_step=stop_at_two)
    assert untrained.training  # stopped mid-way, the model's mode is still restored
    untrained.eval()


def test_attack_restores_training_mode_and_needs_no_model_gradients(trained):
    model = train_toy_model(steps=1)
    model.train()
    model.zero_grad(set_to_none=True)
    waveform, frames, labels = toy_batch(4, seed=16)
    create_attack("pgd", model, eps_audio=0.01)(waveform, frames, labels)
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def test_unimodal_model_gives_no_gradient_for_the_ignored_modality():
    audio_only = train_toy_model(kind="audio", steps=1)
    waveform, frames, labels = toy_batch(4, seed=17)
    result = create_attack("pgd", audio_only, eps_audio=0.01, eps_visual=8 / 255)(waveform, frames, labels)
    assert torch.equal(result.frames, frames)
    assert result.delta_waveform.abs().max() > 0
    audio_only.requires_grad_(False)  # frozen weights: the loss then needs no gradient at all
    result = create_attack("mim", audio_only, eps_visual=8 / 255)(waveform, frames, labels)
    assert torch.equal(result.frames, frames) and torch.equal(result.waveform, waveform)


def test_random_start_is_reproducible_with_a_seed(untrained):
    waveform, frames, labels = toy_batch(2, seed=18)
    make = lambda seed: create_attack(  # noqa: E731
        "pgd", untrained, eps_visual=8 / 255, steps=1, random_start=True, seed=seed
    )(waveform, frames, labels)
    assert torch.equal(make(1).frames, make(1).frames)
    assert not torch.equal(make(1).frames, make(2).frames)


def test_registry_and_bad_arguments_give_clear_errors(untrained):
    assert available_attacks()[:4] == ["fgsm", "ifgsm", "pgd", "mim"]  # by rank; later attacks follow
    with pytest.raises(ValueError, match="unknown attack"):
        create_attack("cw", untrained)
    with pytest.raises(TypeError, match="does not take"):
        create_attack("fgsm", untrained, steps=10)
    with pytest.raises(TypeError):
        FGSM(untrained, random_start=True)
    assert "steps" not in attack_parameters("fgsm") and "decay" in attack_parameters("mim")
    with pytest.raises(ValueError, match="between 0 and 1"):
        create_attack("pgd", untrained, eps_visual=8)
    with pytest.raises(ValueError, match="between 0 and 1"):
        create_attack("pgd", untrained, eps_audio=-0.1)
    with pytest.raises(ValueError, match="at least 1"):
        create_attack("pgd", untrained, steps=0)
    waveform, frames, labels = toy_batch(2, seed=19)
    with pytest.raises(ValueError, match="must lie in"):
        create_attack("fgsm", untrained, eps_audio=0.1)(waveform * 3, frames, labels)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_attacks_run_batched_on_gpu(trained):
    model = train_toy_model().cuda()
    waveform, frames, labels = (t.cuda() for t in toy_batch(32, seed=20))
    result = create_attack("mim", model, eps_audio=0.03, eps_visual=8 / 255)(waveform, frames, labels)
    _check_invariants(result, waveform, frames, 0.03, 8 / 255)
    assert result.frames.device.type == "cuda"


def test_an_attack_called_under_no_grad_still_attacks():
    """A caller's `torch.no_grad()` once made every step zero without a word (issue 15)."""
    model = train_toy_model(steps=60).eval()
    waveform, frames, labels = toy_batch(8, seed=3)
    settings = AttackSettings(eps_audio=0.05, eps_visual=8 / 255, steps=3)
    with torch.no_grad():
        result = create_attack("pgd", model, settings)(waveform, frames, labels)
    expected = create_attack("pgd", model, settings)(waveform, frames, labels)
    assert result.delta_waveform.abs().max() > 0 and result.delta_frames.abs().max() > 0
    torch.testing.assert_close(result.delta_waveform, expected.delta_waveform)
    torch.testing.assert_close(result.delta_frames, expected.delta_frames)


@pytest.mark.parametrize("name", ["pgd", "mim", "tma"])
def test_stopping_when_fooled_keeps_every_clip_fooled_and_costs_fewer_passes(trained, name):
    waveform, frames, labels = toy_batch(32, seed=21)
    options = dict(eps_audio=0.01, eps_visual=3 / 255, steps=10, **({} if name == "mim" else {"seed": 0}))
    full = create_attack(name, trained, **options)
    plain = full(waveform, frames, labels)
    fooled_at_some_step = (plain.trace.predicted[:-1] != labels).any(dim=0)
    early = create_attack(name, trained, **options)
    stopped = early(waveform, frames, labels, stop_when_fooled=True)
    wrong = stopped.output.logits.argmax(-1) != labels
    # every clip fooled at any iterate of the plain attack ends fooled (the early run follows the
    # same path until a clip falls), and no clip is counted right that the last iterate got wrong
    assert bool(wrong[fooled_at_some_step].all()) and wrong.sum() >= (plain.output.logits.argmax(-1) != labels).sum()
    assert 0 < early.passes < full.passes
    for modality, result, clean in (("audio", stopped.waveform, waveform), ("visual", stopped.frames, frames)):
        budget = options["eps_audio"] if modality == "audio" else options["eps_visual"]
        assert (result - clean).abs().max() <= budget + 1e-6
