"""The random-noise control: every attacked value moves by exactly eps, in a random direction,
reproducibly, and it does far less than an attack with gradients."""

from __future__ import annotations

import torch

from avdemo.attacks import create_attack

from toy_task import accuracy, toy_batch, train_toy_model


def test_noise_sits_on_the_corners_of_the_ball_and_is_reproducible():
    model = train_toy_model(steps=1)
    waveform, frames, labels = toy_batch(3, seed=61)
    waveform = waveform.clamp(-0.9, 0.9)  # away from the valid range's edges, where clamping would cut the step
    frames = frames.clamp(0.1, 0.9)
    result = create_attack("noise", model, eps_audio=0.02, eps_visual=4 / 255, seed=5)(waveform, frames, labels)
    torch.testing.assert_close(result.delta_waveform.abs(), torch.full_like(waveform, 0.02))
    torch.testing.assert_close(result.delta_frames.abs(), torch.full_like(frames, 4 / 255))
    signs = result.delta_frames.sign()
    assert 0.45 < (signs > 0).float().mean() < 0.55
    again = create_attack("noise", model, eps_audio=0.02, eps_visual=4 / 255, seed=5)(waveform, frames, labels)
    assert torch.equal(result.frames, again.frames)
    other = create_attack("noise", model, eps_audio=0.02, eps_visual=4 / 255, seed=6)(waveform, frames, labels)
    assert not torch.equal(result.frames, other.frames)


def test_noise_does_much_less_than_a_gradient_attack_at_the_same_budget():
    model = train_toy_model()
    waveform, frames, labels = toy_batch(48, seed=62)
    budget = dict(eps_audio=0.03, eps_visual=8 / 255)
    noise = create_attack("noise", model, **budget, seed=0)(waveform, frames, labels)
    pgd = create_attack("pgd", model, **budget, steps=10)(waveform, frames, labels)
    assert accuracy(model, noise.waveform, noise.frames, labels) >= 0.9
    assert accuracy(model, pgd.waveform, pgd.frames, labels) <= 0.2
