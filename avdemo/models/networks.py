"""Audio-visual event recognition networks: the fused models, the unimodal baselines and
the audio-guided attention localization model (Tian & Xu, CVPR 2021, §3.2 and §4.5).

Every network takes the same two inputs and returns one `AVOutput`, so attacks, defenses
and views treat them alike:
- waveform `(B, L)` float in [-1, 1] at 11025 Hz;
- frames `(B, T, 3, H, W)` float in [0, 1].
The waveform is cut into T windows centred on the frame times (`segments.segment_waveform`);
each segment (frame t with its audio window) gets its own audio and visual features, fusion
and attention work per segment, and the fused segments are averaged before the classifier.
T = 1 is exactly the paper's setting (one frame, the whole waveform). Training may feed one
segment per clip: the T-segment model is the same network averaged over segments.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn

from .audio_net import AudioNet
from .correspondence import CellCorrespondence, cell_similarity
from .fusion import FUSIONS, create_fusion
from .logmel_audio import LogMelAudioNet
from .segments import segment_waveform
from .vgg_visual import VGGVisualNet
from .visual_net import VisualNet

ModelKind = Literal["av", "audio", "visual"]

AUDIO_BACKBONES: dict[str, type[nn.Module]] = {"waveform": AudioNet, "logmel": LogMelAudioNet}
"""Audio networks by name: waveform `(B, L)` in [-1, 1] -> feature `(B, feature_dim)`, with
`min_samples`. "waveform" is the 1-D convolutional net of the paper's appendix A.3, "logmel"
a 2-D CNN on a log-mel spectrogram computed inside it (the second audio backbone)."""
VISUAL_BACKBONES: dict[str, type[nn.Module]] = {"resnet18": VisualNet, "vgg": VGGVisualNet}
"""Visual networks by name: frames `(N, 3, H, W)` in [0, 1] -> (pooled `(N, C)`, map
`(N, C, H / 32, W / 32)`), with `feature_dim`. "resnet18" is the paper's, "vgg" a plain
VGG-style stack (the second visual backbone)."""


def audio_backbone(name: str, width: float) -> nn.Module:
    """A fresh audio network of a registered backbone (one of `AUDIO_BACKBONES`)."""
    try:
        return AUDIO_BACKBONES[name](width)
    except KeyError:
        raise ValueError(f"unknown audio backbone {name!r}; choose one of {sorted(AUDIO_BACKBONES)}") from None


def visual_backbone(name: str, width: float) -> nn.Module:
    """A fresh visual network of a registered backbone (one of `VISUAL_BACKBONES`)."""
    try:
        return VISUAL_BACKBONES[name](width)
    except KeyError:
        raise ValueError(f"unknown visual backbone {name!r}; choose one of {sorted(VISUAL_BACKBONES)}") from None


@dataclass
class AVOutput:
    """What every network returns. Fields a network has no use for are None.

    logits `(B, K)`; fused `(B, D)`, the classifier's input (the per-segment fusions averaged);
    audio `(B, Da)` and visual `(B, Dv)`, the segment features averaged over time;
    audio_segments `(B, T, Da)`; visual_frames `(B, T, Dv)`; visual_map `(B, T, Dv, h, w)`, the
    visual net's last feature map per frame; attention `(B, T, h, w)`, the audio-guided attention
    weights, summing to 1 over each frame's h x w cells; audio_embedding `(B, T, E)` and
    cell_embedding `(B, T, E, h, w)`, unit vectors of the cell-level correspondence (their
    cosine is the localization map) where the model has one.
    """

    logits: torch.Tensor
    fused: torch.Tensor
    audio: torch.Tensor | None = None
    visual: torch.Tensor | None = None
    visual_frames: torch.Tensor | None = None
    visual_map: torch.Tensor | None = None
    attention: torch.Tensor | None = None
    audio_segments: torch.Tensor | None = None
    audio_embedding: torch.Tensor | None = None
    cell_embedding: torch.Tensor | None = None


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network; serialisable to JSON for model cards."""

    num_classes: int
    kind: ModelKind = "av"
    fusion: str = "concat"
    width: float = 1.0
    attention: bool = False
    attention_scale: float = 1.0  # w_i = softmax(scale * f_a^T f_v^i); 1 is the paper's formula
    audio_dropout: float = 0.0  # training only: chance of hiding f_a from the fusion (see AVNet)
    correspondence: bool = False  # a cell-level audio-visual embedding (its cosine is the map)
    correspondence_dim: int = 128
    temperature: float = 0.07  # of the correspondence's softmaxes (attention and contrastive loss)
    audio_backbone: str = "waveform"  # a key of AUDIO_BACKBONES
    visual_backbone: str = "resnet18"  # a key of VISUAL_BACKBONES

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")
        if self.kind not in ("av", "audio", "visual"):
            raise ValueError(f"unknown model kind {self.kind!r}; choose av, audio or visual")
        if self.kind == "av" and self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; choose one of {sorted(FUSIONS)}")
        if (self.attention or self.correspondence) and self.kind != "av":
            raise ValueError("audio-guided attention and correspondence need both modalities (kind='av')")
        if self.audio_backbone not in AUDIO_BACKBONES:
            raise ValueError(f"unknown audio backbone {self.audio_backbone!r}; choose one of {sorted(AUDIO_BACKBONES)}")
        if self.visual_backbone not in VISUAL_BACKBONES:
            raise ValueError(f"unknown visual backbone {self.visual_backbone!r}; choose one of {sorted(VISUAL_BACKBONES)}")

    def to_dict(self) -> dict:
        return asdict(self)


def _check_frames(frames: torch.Tensor) -> None:
    if frames.dim() != 5 or frames.shape[2] != 3:
        raise ValueError(f"frames must be (B, T, 3, H, W), got shape {tuple(frames.shape)}")


def encode_frames(visual_net: nn.Module, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames `(B, T, 3, H, W)` -> per-frame features `(B, T, C)` and maps `(B, T, C, h, w)`."""
    _check_frames(frames)
    batch, steps = frames.shape[:2]
    features, maps = visual_net(frames.flatten(0, 1))
    return features.unflatten(0, (batch, steps)), maps.unflatten(0, (batch, steps))


def encode_audio(audio_net: nn.Module, waveform: torch.Tensor, steps: int) -> torch.Tensor:
    """Waveform `(B, L)` in [-1, 1] -> per-segment audio features `(B, T, C)`, one per window."""
    windows = segment_waveform(waveform, steps)
    return audio_net(windows.flatten(0, 1)).unflatten(0, windows.shape[:2])


def audio_guided_attention(audio: torch.Tensor, maps: torch.Tensor, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """w_i = softmax_i(scale * f_a^T f_v^i) over each frame's cells, with each segment's own audio;
    returns (f_v^att `(B, T, C)`, w `(B, T, h, w)`). audio `(B, T, C)` (or `(B, C)` for every
    frame), maps `(B, T, C, h, w)`. The paper's scale is 1; with ReLU features the raw dot
    products are large and the softmax starts out nearly one-hot, passing little gradient to
    other cells, so a trained model may use 1/sqrt(C) as attention layers do.
    """
    if audio.dim() == 2:
        audio = audio[:, None].expand(-1, maps.shape[1], -1)
    return attend(scale * torch.einsum("btc,btcn->btn", audio, maps.flatten(3)).unflatten(2, maps.shape[3:]), maps)


def attend(scores: torch.Tensor, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax of cell scores `(B, T, h, w)` over each frame's cells, and the weighted sum of the
    cells `(B, T, C, h, w)`: returns (attended `(B, T, C)`, weights `(B, T, h, w)`)."""
    weights = torch.softmax(scores.flatten(2), dim=-1)
    attended = torch.einsum("btn,btcn->btc", weights, maps.flatten(3))
    return attended, weights.view_as(scores)


class AVNet(nn.Module):
    """Audio net + visual net (the config's backbones) + fusion + linear classifier; optionally
    the §4.5 attention, whose attended visual feature replaces the pooled one."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.audio_net = audio_backbone(config.audio_backbone, config.width)
        self.visual_net = visual_backbone(config.visual_backbone, config.width)
        self.fusion = create_fusion(config.fusion, self.audio_net.feature_dim)
        self.classifier = nn.Linear(self.fusion.out_dim, config.num_classes)
        self.correspondence = None
        if config.correspondence:
            self.correspondence = CellCorrespondence(self.audio_net.feature_dim, self.visual_net.feature_dim,
                                                     config.correspondence_dim, config.temperature)

    def forward(self, waveform: torch.Tensor, frames: torch.Tensor) -> AVOutput:
        """waveform `(B, L)` in [-1, 1], frames `(B, T, 3, H, W)` in [0, 1] -> `AVOutput`."""
        _check_frames(frames)
        audio = encode_audio(self.audio_net, waveform, frames.shape[1])
        frame_features, maps = encode_frames(self.visual_net, frames)
        attention = audio_embedding = cell_embedding = None
        if self.correspondence is not None:
            audio_embedding, cell_embedding = self.correspondence(audio, maps)
        if self.config.attention and self.correspondence is not None:
            scores = cell_similarity(audio_embedding, cell_embedding) / self.config.temperature
            frame_features, attention = attend(scores, maps)
        elif self.config.attention:
            frame_features, attention = audio_guided_attention(audio, maps, self.config.attention_scale)
        fused, logits = self.head(self._fusion_audio(audio), frame_features)
        return AVOutput(
            logits=logits,
            fused=fused,
            audio=audio.mean(dim=1),
            visual=frame_features.mean(dim=1),
            visual_frames=frame_features,
            visual_map=maps,
            attention=attention,
            audio_segments=audio,
            audio_embedding=audio_embedding,
            cell_embedding=cell_embedding,
        )

    def _fusion_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """In training, hide f_a from the fusion for a random `audio_dropout` share of clips, so
        the classifier must also work from the visual feature: for the attention model, from the
        region the audio attended to (the fusion dropout of the ICLR 2025 paper's curriculum)."""
        if not self.training or self.config.audio_dropout <= 0:
            return audio
        keep = torch.rand(len(audio), *[1] * (audio.dim() - 1), device=audio.device) >= self.config.audio_dropout
        return audio * keep.to(audio.dtype)

    def head(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fusion + classifier on features `(B, d)` or per segment `(B, T, d)` each -> (fused
        `(B, D)`, the segment fusions averaged, logits `(B, K)`); feature-space defenses
        (ExFMem) call it with denoised features."""
        fused = self.fusion(audio, visual)
        if fused.dim() == 3:
            fused = fused.mean(dim=1)
        return fused, self.classifier(fused)


class AudioOnlyNet(nn.Module):
    """The unimodal audio baseline; it takes frames too (and ignores them) so every network
    has the same call signature."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.audio_net = audio_backbone(config.audio_backbone, config.width)
        self.classifier = nn.Linear(self.audio_net.feature_dim, config.num_classes)

    def forward(self, waveform: torch.Tensor, frames: torch.Tensor | None = None) -> AVOutput:
        """waveform `(B, L)` in [-1, 1]; frames `(B, T, 3, H, W)` only set T (1 without frames)."""
        segments = encode_audio(self.audio_net, waveform, 1 if frames is None else frames.shape[1])
        audio = segments.mean(dim=1)
        return AVOutput(logits=self.classifier(audio), fused=audio, audio=audio, audio_segments=segments)


class VisualOnlyNet(nn.Module):
    """The unimodal visual baseline; it takes the waveform too (and ignores it)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.visual_net = visual_backbone(config.visual_backbone, config.width)
        self.classifier = nn.Linear(self.visual_net.feature_dim, config.num_classes)

    def forward(self, waveform: torch.Tensor | None, frames: torch.Tensor) -> AVOutput:
        frame_features, maps = encode_frames(self.visual_net, frames)
        visual = frame_features.mean(dim=1)
        return AVOutput(
            logits=self.classifier(visual),
            fused=visual,
            visual=visual,
            visual_frames=frame_features,
            visual_map=maps,
        )


NETWORKS: dict[str, type[nn.Module]] = {"av": AVNet, "audio": AudioOnlyNet, "visual": VisualOnlyNet}

ARCHITECTURES: dict[str, dict] = {
    **{f"av-{name}": {"kind": "av", "fusion": name} for name in FUSIONS},
    "av-attention": {"kind": "av", "fusion": "concat", "attention": True},
    "audio-only": {"kind": "audio"},
    "visual-only": {"kind": "visual"},
}
"""The paper's model variants by name: the five fusions, the localization model, the unimodal baselines."""


def build_model(config: ModelConfig) -> nn.Module:
    """A freshly initialised network for a config."""
    return NETWORKS[config.kind](config)


def architecture_config(name: str, num_classes: int, width: float = 1.0, **options) -> ModelConfig:
    """The `ModelConfig` of a named variant (one of `ARCHITECTURES`), with optional extra settings."""
    try:
        return ModelConfig(num_classes=num_classes, width=width, **{**ARCHITECTURES[name], **options})
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of {list(ARCHITECTURES)}") from None
