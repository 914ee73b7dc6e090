"""The CVPR 2021 defenses: MinSim / MaxSim and PCL (training-time loss terms, reusable as
adaptive attack objectives) and ExFMem (an inference-time feature memory over any AV model)."""

from .exfmem import ExFMem, FeatureMemory, collect_memory, ista, soft_threshold
from .pcl import PrototypeConformity
from .similarity import MaxSim, MinSim, audio_visual_cosine

__all__ = [
    "ExFMem",
    "FeatureMemory",
    "MaxSim",
    "MinSim",
    "PrototypeConformity",
    "audio_visual_cosine",
    "collect_memory",
    "ista",
    "soft_threshold",
]
