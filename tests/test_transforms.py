"""The ICLR 2025 attacks' input transformations: shapes, ranges, which modality, sync vs async."""

from __future__ import annotations

import pytest
import torch

from avdemo.attacks.transforms import TRANSFORMS, blur_frames, blur_waveform, check_transforms, transform_copy

from toy_task import toy_batch


def _clip(count=3, seed=0):
    waveform, frames, _ = toy_batch(count, seed=seed, frames_per_clip=4)
    return waveform, frames


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
@pytest.mark.parametrize("modality", ["audio", "visual", "both"])
def test_every_transform_keeps_shapes_ranges_and_the_untouched_modality(name, modality):
    waveform, frames = _clip()
    audio, visual = transform_copy(name, waveform, frames, modality, synchronous=False, generator=torch.Generator().manual_seed(1))
    assert audio.shape == waveform.shape and visual.shape == frames.shape
    assert audio.abs().max() <= 1 and visual.min() >= 0 and visual.max() <= 1
    assert torch.equal(audio, waveform) == (modality == "visual")
    assert torch.equal(visual, frames) == (modality == "audio")


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transforms_pass_gradients_and_are_reproducible(name):
    waveform, frames = _clip()
    waveform.requires_grad_(True)
    frames.requires_grad_(True)
    make = lambda: transform_copy(name, waveform, frames, "both", True, torch.Generator().manual_seed(7))  # noqa: E731
    audio, visual = make()
    (audio.sum() + visual.sum()).backward()
    assert waveform.grad.abs().sum() > 0 and frames.grad.abs().sum() > 0
    again = make()
    assert torch.equal(audio, again[0]) and torch.equal(visual, again[1])


def test_synchronous_scaling_shares_one_factor_and_asynchronous_draws_two():
    waveform, frames = _clip()
    for synchronous in (True, False):
        audio, visual = transform_copy("scale", waveform, frames, "both", synchronous, torch.Generator().manual_seed(3))
        audio_factor = (audio / waveform)[waveform.abs() > 0.1].mean()
        visual_factor = (visual / frames)[frames > 0.1].mean()
        assert torch.isclose(audio_factor, visual_factor, atol=1e-4) == synchronous


def test_synchronous_masks_hide_the_same_moments_and_asynchronous_different_ones():
    waveform = torch.full((1, 20 * 4096), 0.5)
    frames = torch.full((1, 20, 3, 8, 8), 0.9)
    for synchronous in (True, False):
        for seed in range(5):
            audio, visual = transform_copy("mask", waveform, frames, "both", synchronous, torch.Generator().manual_seed(seed))
            silent = (audio.view(20, 4096) == 0).all(dim=1)
            hidden = (visual[0] != 0.9).flatten(1).all(dim=1)
            assert silent.sum() >= 1  # at least 5 % of 20 windows
            assert torch.equal(silent, hidden) == synchronous
            if not synchronous:
                assert not (silent & hidden).any()


def test_blur_leaves_constants_alone_and_smooths_noise():
    constant = torch.full((2, 5000), 0.3)
    torch.testing.assert_close(blur_waveform(constant, 1.0), constant)
    noise = torch.randn(2, 5000, generator=torch.Generator().manual_seed(0)) * 0.2
    assert blur_waveform(noise, 1.5).std() < 0.7 * noise.std()
    frames = torch.rand(1, 2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    blurred = blur_frames(frames, 1.5)
    assert blurred.std() < 0.7 * frames.std()
    torch.testing.assert_close(blurred.mean(), frames.mean(), atol=0.02, rtol=0)


def test_mixup_with_one_clip_mixes_it_with_itself_shifted_in_time():
    waveform, frames = _clip(count=1)
    audio, visual = transform_copy("mixup", waveform, frames, "both", True, torch.Generator().manual_seed(2))
    eta = ((audio - waveform) / (waveform.roll(waveform.shape[1] // 2, dims=1) - waveform))
    eta = eta[(waveform.roll(waveform.shape[1] // 2, dims=1) - waveform).abs() > 0.05]
    assert 0 < eta.median() <= 0.2 and eta.std() < 1e-3


def test_unknown_transform_names_give_a_clear_error():
    assert check_transforms(("scale", "blur")) == ("scale", "blur")
    with pytest.raises(ValueError, match="unknown input transformations"):
        check_transforms(("scale", "rotate"))
    with pytest.raises(ValueError, match="unknown input transformations"):
        check_transforms(())
