"""PAM: the gradient sums the input's and its path augmentations' (x / 2^i + b (1 - 1/2^i)),
checked against the public code's loop written out independently; audio baselines; errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from avdemo.attacks import create_attack
from avdemo.attacks.pam import NOISE_RMS, VISUAL_BASELINES, noise_baseline

from toy_task import accuracy, toy_batch, train_toy_model


def _reference_pam(model, waveform, frames, labels, eps, alpha, steps, paths, scales):
    """TransferAttack's PAM (ratios 1) on the frames: grad CE(x) + sum over paths and scales."""
    adv, momentum = frames.clone(), torch.zeros_like(frames)
    for _ in range(steps):
        adv.requires_grad_(True)
        grad, = torch.autograd.grad(F.cross_entropy(model(waveform, adv).logits, labels, reduction="sum"), adv)
        for path in range(paths):
            colour = torch.tensor(VISUAL_BASELINES[path]).view(1, 1, 3, 1, 1)
            for i in range(1, scales + 1):
                augmented = adv / 2 ** i + colour * (1 - 1 / 2 ** i)
                loss = F.cross_entropy(model(waveform, augmented).logits, labels, reduction="sum")
                grad = grad + torch.autograd.grad(loss, adv)[0]
        momentum = momentum + grad / grad.abs().flatten(1).mean(1).clamp_min(1e-12).view(-1, 1, 1, 1, 1)
        adv = (frames + (adv.detach() + alpha * momentum.sign() - frames).clamp(-eps, eps)).clamp(0, 1)
    return adv


@pytest.fixture(scope="module")
def model():
    return train_toy_model()


def test_pam_sums_gradients_along_the_paths(model):
    waveform, frames, labels = toy_batch(4, seed=41)
    result = create_attack("pam", model, eps_visual=8 / 255, step_visual=2 / 255, steps=3, paths=3, scales=2)(
        waveform, frames, labels)
    expected = _reference_pam(model, waveform, frames, labels, 8 / 255, 2 / 255, 3, 3, 2)
    assert (result.frames - expected).abs().max() <= 1e-5
    assert torch.equal(result.waveform, waveform)
    mim = create_attack("mim", model, eps_visual=8 / 255, step_visual=2 / 255, steps=3)(waveform, frames, labels)
    assert (mim.frames - expected).abs().max() > 1e-3


def test_audio_baselines_are_silence_and_coloured_noises():
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(noise_baseline(None, 1000, generator), torch.zeros(1000))
    slopes = []
    for exponent in (0.0, 1.0, 2.0):
        noise = noise_baseline(exponent, 1 << 14, generator)
        assert noise.pow(2).mean().sqrt().item() == pytest.approx(NOISE_RMS, rel=1e-4)
        power = torch.fft.rfft(noise).abs() ** 2
        slopes.append((power[10:200].mean() / power[-2000:].mean()).log10().item())
    assert slopes[0] < slopes[1] < slopes[2]  # white, pink, brown: ever more low-frequency power


def test_pam_hurts_a_trained_model_and_refuses_more_paths_than_baselines(model):
    """On the toy task (a class is a colour) paths toward flat colours blur the cue, so PAM is a weak
    white-box attack here: at its public defaults (8 paths x 4 scales) it still lowers accuracy and
    raises the loss at the input itself many times over."""
    waveform, frames, labels = toy_batch(32, seed=42)
    result = create_attack("pam", model, eps_audio=0.03, eps_visual=8 / 255, steps=10)(waveform, frames, labels)
    assert result.waveform.abs().max() <= 1 and (result.delta_waveform.abs() <= 0.03 + 1e-6).all()
    assert accuracy(model, waveform, frames, labels) >= 0.95
    assert accuracy(model, result.waveform, result.frames, labels) <= 0.9
    assert result.trace.loss[-1].mean() > 10 * result.trace.loss[0].mean()
    with pytest.raises(ValueError, match="8 baselines: paths must be at most that"):
        create_attack("pam", model, eps_visual=8 / 255, paths=9)
