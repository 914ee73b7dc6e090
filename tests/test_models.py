"""The model family: shapes, parameter counts, the appendix's formulas, torchvision parity."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from avdemo.models import (
    FUSIONS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    AudioNet,
    ModelConfig,
    VisualNet,
    audio_guided_attention,
    build_model,
    create_fusion,
)

WIDTH = 1 / 8
SAMPLES = 16384  # 4 windows of 4096, the audio net's minimum
SIZE = 64


def _inputs(batch: int, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(batch, SAMPLES) * 2 - 1, torch.rand(batch, steps, 3, SIZE, SIZE)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
@pytest.mark.parametrize("steps", [1, 3])
def test_av_model_output_shapes(fusion, steps):
    model = build_model(ModelConfig(num_classes=5, fusion=fusion, width=WIDTH)).eval()
    out = model(*_inputs(2, steps))
    dim = 64  # 512 * 1/8
    fused = 2 * dim if fusion in ("concat", "gated-concat") else dim
    assert out.logits.shape == (2, 5)
    assert out.fused.shape == (2, fused)
    assert out.audio.shape == (2, dim) and out.visual.shape == (2, dim)
    assert out.visual_frames.shape == (2, steps, dim)
    assert out.visual_map.shape == (2, steps, dim, SIZE // 32, SIZE // 32)
    assert out.attention is None
    torch.testing.assert_close(out.visual, out.visual_frames.mean(dim=1))


@pytest.mark.parametrize("steps", [1, 4])
def test_attention_model_returns_normalised_maps_per_frame(steps):
    model = build_model(ModelConfig(num_classes=3, width=WIDTH, attention=True)).eval()
    out = model(*_inputs(2, steps))
    assert out.attention.shape == (2, steps, 2, 2)
    torch.testing.assert_close(out.attention.sum(dim=(2, 3)), torch.ones(2, steps))
    # f_v^att = sum_i w_i f_v^i replaces the pooled feature.
    manual = (out.attention.unsqueeze(2) * out.visual_map).sum(dim=(3, 4))
    torch.testing.assert_close(out.visual_frames, manual)


def test_attention_weights_follow_the_audio_feature():
    maps = torch.zeros(1, 1, 2, 3, 3)
    maps[0, 0, 0, 0, 0] = 5.0  # cell (0, 0) carries channel 0
    maps[0, 0, 1, 2, 2] = 5.0  # cell (2, 2) carries channel 1
    _, towards_first = audio_guided_attention(torch.tensor([[1.0, 0.0]]), maps)
    _, towards_second = audio_guided_attention(torch.tensor([[0.0, 1.0]]), maps)
    assert towards_first[0, 0].argmax() == 0 and towards_second[0, 0].argmax() == 8


def test_unimodal_models_ignore_the_other_input():
    audio_model = build_model(ModelConfig(num_classes=4, kind="audio", width=WIDTH)).eval()
    visual_model = build_model(ModelConfig(num_classes=4, kind="visual", width=WIDTH)).eval()
    waveform, frames = _inputs(2, 2)
    a = audio_model(waveform, frames)
    assert a.logits.shape == (2, 4) and a.visual is None
    torch.testing.assert_close(a.logits, audio_model(waveform, torch.zeros_like(frames)).logits)
    v = visual_model(waveform, frames)
    assert v.logits.shape == (2, 4) and v.audio is None and v.visual_map.shape[1] == 2
    torch.testing.assert_close(v.logits, visual_model(torch.zeros_like(waveform), frames).logits)


def test_width_one_parameter_counts():
    assert _count(AudioNet(1.0)) == 1_566_528  # 1.57 M, appendix A.3
    reference = torchvision.models.resnet18(weights=None)
    assert _count(VisualNet(1.0)) == _count(reference) - _count(reference.fc)
    model = build_model(ModelConfig(num_classes=18, width=1.0))
    assert _count(model) == 1_566_528 + 11_176_512 + 1024 * 18 + 18


def test_audio_net_is_the_appendix_architecture():
    layers = list(AudioNet(1.0).net)
    convs = [m for m in layers if isinstance(m, nn.Conv1d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert all(c.kernel_size == (3,) and c.stride == (2,) and c.padding == (1,) for c in convs)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in layers) == 8
    assert sum(isinstance(m, nn.MaxPool1d) for m in layers) == 4
    # 65535 samples leave 16 time steps before the global max pool.
    assert AudioNet(1 / 16).net(torch.zeros(1, 1, 65535)).shape[-1] == 16


def test_visual_net_matches_torchvision_resnet18_keys_shapes_and_function():
    reference = torchvision.models.resnet18(weights=None).eval()
    ours = VisualNet(1.0).eval()
    expected = {k: v.shape for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in ours.state_dict().items()} == expected
    # torchvision's weights load strictly and give the same features (ImageNet normalisation inside).
    ours.load_state_dict({k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")})
    frames = torch.rand(2, 3, 96, 96)
    normalised = (frames - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    reference.fc = nn.Identity()
    with torch.no_grad():
        pooled, feature_map = ours(frames)
        torch.testing.assert_close(pooled, reference(normalised), rtol=1e-5, atol=1e-5)
    assert feature_map.shape == (2, 512, 3, 3)


def test_fusions_follow_the_appendix_formulas():
    audio, visual = torch.randn(3, 8), torch.randn(3, 8)
    sigmoid = torch.sigmoid
    torch.testing.assert_close(create_fusion("sum", 8)(audio, visual), audio + visual)
    torch.testing.assert_close(create_fusion("concat", 8)(audio, visual), torch.cat([audio, visual], 1))
    film = create_fusion("film", 8)
    torch.testing.assert_close(film(audio, visual), film.alpha(audio) * visual + audio)
    gated = (sigmoid(audio) * visual, sigmoid(visual) * audio)
    torch.testing.assert_close(create_fusion("gated-sum", 8)(audio, visual), gated[0] + gated[1])
    torch.testing.assert_close(create_fusion("gated-concat", 8)(audio, visual), torch.cat(gated, 1))


def test_clear_errors_for_bad_configs_and_shapes():
    with pytest.raises(ValueError, match="unknown fusion"):
        ModelConfig(num_classes=3, fusion="product")
    with pytest.raises(ValueError, match="attention"):
        ModelConfig(num_classes=3, kind="audio", attention=True)
    model = build_model(ModelConfig(num_classes=3, width=WIDTH))
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        model(torch.zeros(1, SAMPLES), torch.zeros(1, 3, SIZE, SIZE))
    with pytest.raises(ValueError, match="at least 4096"):
        model(torch.zeros(1, 100), torch.zeros(1, 1, 3, SIZE, SIZE))
    with pytest.raises(ValueError, match="features of size"):
        create_fusion("sum", 8)(torch.zeros(1, 8), torch.zeros(1, 4))


def test_attention_scale_softens_the_map():
    maps = torch.rand(2, 1, 8, 3, 3) * 4
    audio = torch.rand(2, 8) * 4
    sharp = audio_guided_attention(audio, maps)[1].flatten(2)
    soft = audio_guided_attention(audio, maps, scale=0.1)[1].flatten(2)
    entropy = lambda w: -(w * w.clamp_min(1e-12).log()).sum(-1)  # noqa: E731
    assert (entropy(soft) > entropy(sharp)).all()


def test_audio_dropout_hides_audio_from_the_fusion_only_in_training():
    model = build_model(ModelConfig(num_classes=3, width=WIDTH, audio_dropout=0.5))
    waveform, frames = _inputs(64, 1)
    model.train()
    out = model(waveform, frames)
    hidden = (out.fused[:, :64] == 0).all(dim=1)
    assert 10 < hidden.sum() < 54 and (out.audio[hidden] != 0).any()  # the output keeps the real f_a
    model.eval()
    out = model(waveform, frames)
    assert not (out.fused[:, :64] == 0).all(dim=1).any()
