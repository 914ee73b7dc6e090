"""One run of the lab, without any UI: a decoded clip, a zoo model (possibly defended), an
attack; out come the clean and attacked outputs, localization maps, perceptibility, the
attack trace and the clip's place in the model's t-SNE maps.

Models, defense terms and fitted t-SNE maps are cached per process, so a second run on the
same model only pays for the attack itself.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .attacks import AttackResult, create_attack, paper_preset
from .embeddings import EmbeddingMap, fit_reference_maps
from .localization import distractor_hits, localization_maps, pointing_game, upsample
from .media import Clip
from .metrics import db_x, linf_255, psnr, snr_db, ssim
from .models import AVOutput
from .zoo import CHECKPOINTS, describe, list_models, load_defense_term, load_model, load_tensors

DEFENSES = {
    "none": None,
    "MinSim": "av-minsim",
    "MaxSim": "av-maxsim",
    "PCL": "av-pcl",
    "ExFMem": "av-concat-exfmem",
    "MinSim + ExFMem": "av-minsim-exfmem",
}
"""Defense -> the zoo model that implements it. As in the paper, every defense is built on the
concat base model."""


@dataclass
class GroundTruth:
    """Where the sound comes from, per decoded frame: box `(T, 4)` (x0, y0, x1, y1, pixels of
    the model's frame), distractor boxes `(T, D, 4)` and their class names."""

    label: str
    box: np.ndarray
    distractor_box: np.ndarray
    distractor_labels: list[str]


def ground_truth_for(video: str | Path, clip: Clip) -> GroundTruth | None:
    """The sidecar `<video>.json` of a shipped example, matched to the decoded frames by time."""
    sidecar = Path(video).with_suffix(".json")
    if not sidecar.is_file():
        return None
    truth = json.loads(sidecar.read_text())
    times = np.array(truth["frame_times"])
    frames = [int(np.argmin(np.abs(times - t))) for t in clip.frame_times]
    scale = clip.frames.shape[1] / truth["frame_size"]
    box = np.array(truth["box"], np.float32)[frames] * scale
    distractors = [np.array(d["box"], np.float32)[frames] * scale for d in truth["distractors"]]
    distractor_box = np.stack(distractors, axis=1) if distractors else np.zeros((len(frames), 0, 4), np.float32)
    return GroundTruth(truth["label"], box, distractor_box, [d["label"] for d in truth["distractors"]])


@functools.lru_cache(maxsize=16)
def cached_model(name: str, device: str = "cpu") -> torch.nn.Module:
    return load_model(name, device)


@functools.lru_cache(maxsize=16)
def cached_term(name: str, device: str = "cpu") -> torch.nn.Module | None:
    return load_defense_term(name.removesuffix("-exfmem"), device)


@functools.lru_cache(maxsize=16)
def cached_maps(name: str) -> dict[str, EmbeddingMap]:
    card = describe(name)
    return fit_reference_maps(load_tensors(CHECKPOINTS / card["embeddings"]["file"], card["embeddings"]))


def resolve_model(model: str, defense: str) -> tuple[str, str | None]:
    """The zoo entry to run for a model and a defense, and a note when the choice changed it."""
    if defense not in DEFENSES:
        raise ValueError(f"unknown defense {defense!r}; choose one of {list(DEFENSES)}")
    target = DEFENSES[defense]
    if target is None:
        return model, None
    note = None if model == "av-concat" else f"The {defense} defense is trained on the concat base model (as in the paper), so av-concat's defended version runs."
    return target, note


def budgets(modality: str, eps_audio: float, eps_visual: float) -> dict[str, float]:
    """Attack budgets for the attacked modality: eps_audio in waveform units, eps_visual in pixel units."""
    if modality not in ("audio", "visual", "both"):
        raise ValueError(f"modality must be audio, visual or both, got {modality!r}")
    return {
        "eps_audio": float(eps_audio) if modality in ("audio", "both") else 0.0,
        "eps_visual": float(eps_visual) if modality in ("visual", "both") else 0.0,
    }


@dataclass
class Analysis:
    """Everything one run produced, for the views. Arrays are numpy, batch dimension removed."""

    model_name: str
    classes: list[str]
    clip: Clip
    truth: GroundTruth | None
    clean: AVOutput
    attacked: AVOutput
    result: AttackResult
    clean_maps: np.ndarray | None  # (T, S, S) in [0, 1]
    attacked_maps: np.ndarray | None
    perceptibility: dict[str, float]
    embeddings: dict[str, dict[str, np.ndarray]]  # map name -> {"reference", "labels", "modalities", "clean", "attacked", "kinds"}
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def label_index(self) -> int | None:
        return self.classes.index(self.truth.label) if self.truth and self.truth.label in self.classes else None

    def localization_verdicts(self, maps: np.ndarray) -> list[dict[str, bool]]:
        """Per frame: does the map's peak hit the sounding object, or a silent distractor?"""
        if self.truth is None or maps is None:
            return []
        hits = pointing_game(maps, self.truth.box)
        on_distractor = distractor_hits(maps, self.truth.distractor_box) if self.truth.distractor_box.shape[1] else [False] * len(maps)
        return [{"hit": bool(h), "distractor": bool(d)} for h, d in zip(hits, on_distractor)]


def _features(output: AVOutput) -> dict[str, np.ndarray]:
    return {name: getattr(output, name)[0].detach().float().numpy() for name in ("audio", "visual", "fused")
            if getattr(output, name) is not None}


def _place(maps: dict[str, EmbeddingMap], clean: AVOutput, attacked: AVOutput) -> dict[str, dict[str, np.ndarray]]:
    clean_features, attacked_features = _features(clean), _features(attacked)
    placed = {}
    for name, fitted in maps.items():
        kinds = ["audio", "visual"] if name == "audio-visual" else [name]
        new = np.stack([clean_features[k] for k in kinds] + [attacked_features[k] for k in kinds])
        positions = fitted.place(new)
        placed[name] = {"reference": fitted.points, "labels": fitted.labels, "modalities": fitted.modalities,
                        "clean": positions[: len(kinds)], "attacked": positions[len(kinds):], "kinds": np.array(kinds)}
    return placed


def run(
    clip: Clip,
    model: str = "av-concat",
    defense: str = "none",
    attack: str = "pgd",
    modality: str = "both",
    eps_audio: float = 0.006,
    eps_visual: float = 2 / 255,
    steps: int = 10,
    target: str | None = None,
    seed: int = 0,
    paper: bool = False,
    truth: GroundTruth | None = None,
    device: str = "cpu",
) -> Analysis:
    """Attack one clip and measure everything the app shows.

    eps_visual is in pixel units (2/255 = 0.0078). With `paper=True` the budgets and steps
    are the paper preset for the attack and modality instead. `target` (a class name) makes
    the attack targeted; untargeted attacks push away from the true label where the clip has
    ground truth, else from the model's own clean prediction.
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    name, note = resolve_model(model, defense)
    if name not in list_models():
        raise ValueError(f"the model {name!r} is not in checkpoints/")
    network = cached_model(name, device)
    term = cached_term(name, device)
    classes = describe(name)["classes"]
    waveform, frames = (t.to(device) for t in clip.model_inputs())
    timings["load"] = time.perf_counter() - clock

    clock = time.perf_counter()
    with torch.no_grad():
        clean = network(waveform, frames)
    if target is not None and target not in classes:
        raise ValueError(f"unknown target class {target!r}")
    if target is not None:
        labels = torch.tensor([classes.index(target)], device=device)
    elif truth is not None and truth.label in classes:
        labels = torch.tensor([classes.index(truth.label)], device=device)
    else:
        labels = clean.logits.argmax(-1)
    if paper:
        options = paper_preset(attack, modality)
    else:
        options = budgets(modality, eps_audio, eps_visual)
        if attack != "fgsm":
            options["steps"] = int(steps)
        if attack == "pgd":
            options.update(random_start=True, seed=int(seed))
    attacker = create_attack(attack, network, targeted=target is not None, extra_loss=term, **options)
    result = attacker(waveform, frames, labels)
    timings["attack"] = time.perf_counter() - clock

    clock = time.perf_counter()
    clean_maps = attacked_maps = None
    if clean.audio is not None and clean.visual_map is not None:
        size = frames.shape[-1]
        clean_maps = upsample(localization_maps(clean), size)[0].cpu().numpy()
        attacked_maps = upsample(localization_maps(result.output), size)[0].cpu().numpy()
    timings["maps"] = time.perf_counter() - clock

    clock = time.perf_counter()
    delta_audio = result.delta_waveform[0].cpu().numpy()
    clean_frames = clip.frames.astype(np.float32) / 255
    adversarial_frames = result.frames[0].permute(0, 2, 3, 1).cpu().numpy()
    perceptibility = {
        "linf_255": linf_255(result.delta_frames.cpu().numpy()),
        "psnr_db": float(np.mean([psnr(c, a) for c, a in zip(clean_frames, adversarial_frames)])),
        "ssim": float(np.mean([ssim(c, a) for c, a in zip(clean_frames, adversarial_frames)])),
        "audio_linf": float(np.abs(delta_audio).max()),
        "snr_db": snr_db(clip.waveform, delta_audio),
        "db_x": db_x(clip.waveform, delta_audio),
    }
    timings["perceptibility"] = time.perf_counter() - clock

    clock = time.perf_counter()
    embeddings = _place(cached_maps(name), clean, result.output) if describe(name).get("embeddings") else {}
    timings["tsne"] = time.perf_counter() - clock

    notes = [note] if note else []
    if not clip.has_audio:
        notes.append("This file has no audio track: the model hears silence.")
    return Analysis(name, classes, clip, truth, clean, result.output, result, clean_maps, attacked_maps,
                    perceptibility, embeddings, notes, timings)
