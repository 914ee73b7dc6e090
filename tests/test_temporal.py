"""Temporal segments: each frame gets the audio window around its own time, T = 1 is the
CVPR setting exactly, and the T-segment model is the per-segment network averaged."""

from __future__ import annotations

import pytest
import torch

from avdemo.models import ModelConfig, build_model
from avdemo.models.segments import segment_waveform, window_length, window_starts
from avdemo.training.train import one_segment

WIDTH = 1 / 16
SIZE = 64


def test_one_segment_is_the_whole_waveform_unchanged():
    waveform = torch.rand(3, 65535) * 2 - 1
    segments = segment_waveform(waveform, 1)
    assert segments.shape == (3, 1, 65535)
    assert torch.equal(segments[:, 0], waveform)


@pytest.mark.parametrize("steps", [2, 4, 5])
def test_the_window_of_frame_t_is_centred_on_frame_t(steps):
    total = 65535
    ramp = torch.arange(total, dtype=torch.float64)[None]  # each sample holds its own index
    segments = segment_waveform(ramp, steps)
    length = window_length(total, steps)
    assert segments.shape == (1, steps, length)
    for t in range(steps):
        frame_time = (t + 0.5) * total / steps  # in samples, where media/synth put frame t
        inside = segments[0, t][segments[0, t] > 0]  # padding is 0 (silence); sample 0 is also 0
        centre = (inside.min() + inside.max()).item() / 2
        assert abs(centre - frame_time) <= 1.0 or inside.min() == 1 or inside.max() == total - 1
        assert inside.min() <= frame_time <= inside.max()


def test_windows_tile_the_clip_when_the_length_divides():
    waveform = torch.randn(2, 4 * 4096)
    segments = segment_waveform(waveform, 4)
    assert torch.equal(segments.flatten(1), waveform)
    assert window_starts(4 * 4096, 4) == [0, 4096, 8192, 12288]


def test_windows_past_the_ends_are_padded_with_silence():
    waveform = torch.ones(1, 10)
    segments = segment_waveform(waveform, 3)  # windows of 3 centred on 1.67, 5, 8.33
    assert segments.shape == (1, 3, 3)
    assert torch.equal(segments.sum(dim=2), torch.tensor([[3.0, 3.0, 3.0]]))
    with pytest.raises(ValueError, match="at least 1"):
        segment_waveform(waveform, 0)


@pytest.mark.parametrize("architecture", [dict(fusion="concat"), dict(fusion="gated-sum"), dict(attention=True),
                                          dict(attention=True, correspondence=True)])
def test_t1_model_is_the_cvpr_model(architecture):
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_classes=4, width=WIDTH, **architecture)).eval()
    waveform, frames = torch.rand(2, 8192) * 2 - 1, torch.rand(2, 1, 3, SIZE, SIZE)
    with torch.no_grad():
        out = model(waveform, frames)
        audio = model.audio_net(waveform)  # the whole waveform, as in the reference code
        visual, maps = model.visual_net(frames[:, 0])
        if model.config.attention and model.config.correspondence:
            audio_unit, cell_unit = model.correspondence(audio[:, None], maps[:, None])
            weights = torch.softmax(torch.einsum("be,behw->bhw", audio_unit[:, 0], cell_unit[:, 0]).flatten(1)
                                    / model.config.temperature, dim=1)
            visual = torch.einsum("bn,bcn->bc", weights, maps.flatten(2))
        elif model.config.attention:
            weights = torch.softmax(torch.einsum("bc,bcn->bn", audio, maps.flatten(2)), dim=1)
            visual = torch.einsum("bn,bcn->bc", weights, maps.flatten(2))
        expected = model.classifier(model.fusion(audio, visual))
    torch.testing.assert_close(out.logits, expected)
    torch.testing.assert_close(out.audio, audio)


@pytest.mark.parametrize("architecture", [dict(fusion="concat"), dict(fusion="film"), dict(attention=True, correspondence=True)])
def test_t_segment_model_averages_the_per_segment_network(architecture):
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_classes=4, width=WIDTH, **architecture)).eval()
    steps = 3
    waveform, frames = torch.rand(2, 3 * 4096) * 2 - 1, torch.rand(2, steps, 3, SIZE, SIZE)
    windows = segment_waveform(waveform, steps)
    with torch.no_grad():
        whole = model(waveform, frames)
        parts = [model(windows[:, t], frames[:, t : t + 1]) for t in range(steps)]
    torch.testing.assert_close(whole.fused, torch.stack([p.fused for p in parts]).mean(dim=0))
    torch.testing.assert_close(whole.audio_segments, torch.cat([p.audio_segments for p in parts], dim=1))
    if whole.attention is not None:
        torch.testing.assert_close(whole.attention, torch.cat([p.attention for p in parts], dim=1))
    assert whole.audio_segments.shape == (2, steps, model.audio_net.feature_dim)
    assert whole.visual_frames.shape == (2, steps, model.visual_net.feature_dim)


def test_audio_only_model_cuts_segments_from_the_frames_count():
    model = build_model(ModelConfig(num_classes=3, kind="audio", width=WIDTH)).eval()
    waveform = torch.rand(2, 4 * 4096) * 2 - 1
    with torch.no_grad():
        four = model(waveform, torch.zeros(2, 4, 3, 8, 8))
        one = model(waveform)
    assert four.audio_segments.shape[1] == 4 and one.audio_segments.shape[1] == 1
    assert not torch.allclose(four.logits, one.logits)


def test_training_segment_pairs_each_frame_with_its_own_window():
    steps = 4
    waveform = torch.arange(2 * steps * 4096, dtype=torch.float32).view(2, -1)
    frames = torch.arange(steps, dtype=torch.float32).view(1, steps, 1, 1, 1).expand(2, steps, 3, 2, 2).clone()
    chosen_waveform, chosen_frames = one_segment(waveform, frames, torch.Generator().manual_seed(3))
    assert chosen_waveform.shape == (2, 4096) and chosen_frames.shape == (2, 1, 3, 2, 2)
    for row in range(2):
        t = int(chosen_frames[row, 0, 0, 0, 0])
        assert torch.equal(chosen_waveform[row], waveform[row, t * 4096 : (t + 1) * 4096])
