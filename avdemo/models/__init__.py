"""The audio-visual model family: audio net, visual net, fusions and the full networks."""

from .audio_net import AudioNet
from .fusion import FUSIONS, create_fusion
from .logmel_audio import LogMelAudioNet
from .networks import (
    ARCHITECTURES,
    AUDIO_BACKBONES,
    VISUAL_BACKBONES,
    AudioOnlyNet,
    AVNet,
    AVOutput,
    ModelConfig,
    VisualOnlyNet,
    architecture_config,
    audio_guided_attention,
    build_model,
)
from .vgg_visual import VGGVisualNet
from .visual_net import IMAGENET_MEAN, IMAGENET_STD, VisualNet

__all__ = [
    "ARCHITECTURES",
    "AUDIO_BACKBONES",
    "AVNet",
    "AVOutput",
    "AudioNet",
    "AudioOnlyNet",
    "FUSIONS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LogMelAudioNet",
    "ModelConfig",
    "VGGVisualNet",
    "VISUAL_BACKBONES",
    "VisualNet",
    "VisualOnlyNet",
    "architecture_config",
    "audio_guided_attention",
    "build_model",
    "create_fusion",
]
