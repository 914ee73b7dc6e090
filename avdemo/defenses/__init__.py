"""Every defense, registered with what it is and how it is attacked (`DEFENSES`): the CVPR 2021
ones, MinSim / MaxSim and PCL (training-time loss terms, reusable as adaptive attack
objectives) and ExFMem (an inference-time feature memory over any AV model); and training
procedures: PGD adversarial training and the ICLR 2025 efficient adversarial training with its
curriculum (`adversarial_training`), and the ICASSP 2022 multimodal mixup (`mixup`).

Every module of this package that defines a defense registers it; all are imported here,
so adding a defense is adding its file (plus its zoo config and its test).
"""

from ..plugins import import_modules
from .exfmem import ExFMem, FeatureMemory, collect_memory
from .objectives import Objective, craft, objectives_for, parse_objective
from .pcl import PrototypeConformity
from .registry import (
    BASE_MODEL,
    DEFENSES,
    Defense,
    TrainingProcedure,
    available_defenses,
    create_procedure,
    create_term,
    defense_of_entry,
    get_defense,
    register_defense,
)
from .similarity import MaxSim, MinSim, audio_visual_cosine

import_modules(__name__, __path__, skip={"registry", "objectives"})

__all__ = [
    "BASE_MODEL",
    "DEFENSES",
    "Defense",
    "TrainingProcedure",
    "ExFMem",
    "FeatureMemory",
    "MaxSim",
    "MinSim",
    "Objective",
    "PrototypeConformity",
    "audio_visual_cosine",
    "available_defenses",
    "collect_memory",
    "craft",
    "create_procedure",
    "create_term",
    "defense_of_entry",
    "get_defense",
    "objectives_for",
    "parse_objective",
    "register_defense",
]
