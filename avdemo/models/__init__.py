"""The audio-visual model family: audio net, visual net, fusions and the full networks."""

from .audio_net import AudioNet
from .fusion import FUSIONS, create_fusion
from .networks import (
    ARCHITECTURES,
    AudioOnlyNet,
    AVNet,
    AVOutput,
    ModelConfig,
    VisualOnlyNet,
    architecture_config,
    audio_guided_attention,
    build_model,
)
from .visual_net import IMAGENET_MEAN, IMAGENET_STD, VisualNet

__all__ = [
    "ARCHITECTURES",
    "AVNet",
    "AVOutput",
    "AudioNet",
    "AudioOnlyNet",
    "FUSIONS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ModelConfig",
    "VisualNet",
    "VisualOnlyNet",
    "architecture_config",
    "audio_guided_attention",
    "build_model",
    "create_fusion",
]
