"""The CVPR 2021 defenses: MinSim / MaxSim and PCL (training-time loss terms, reusable as
adaptive attack objectives) and ExFMem (an inference-time feature memory over any AV model)."""

from torch import nn

from .exfmem import ExFMem, FeatureMemory, collect_memory, ista, soft_threshold
from .pcl import PrototypeConformity
from .similarity import MaxSim, MinSim, audio_visual_cosine

TERMS = ("minsim", "maxsim", "pcl")


def create_term(kind: str, weight: float, num_classes: int, dim: int) -> nn.Module:
    """A training-time defense term by name; PCL needs the class count and fused-feature size."""
    if kind == "minsim":
        return MinSim(weight)
    if kind == "maxsim":
        return MaxSim(weight)
    if kind == "pcl":
        return PrototypeConformity(num_classes, dim, weight)
    raise ValueError(f"unknown defense {kind!r}; choose one of {TERMS}")


__all__ = [
    "TERMS",
    "create_term",
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
