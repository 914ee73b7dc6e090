"""One run of the lab, without any UI: a decoded clip, a zoo model (possibly defended), an
attack; out come the clean and attacked predictions, localization maps, perceptibility, the
attack trace and the clip's place in the model's t-SNE maps.

Torch stays inside this module: what `run` hands to the views is an `Analysis` of numpy
arrays on the CPU with the batch dimension removed. A defended model is attacked with every
objective its defense lists (`avdemo.defenses`), one after the other; the views show the
objective that hurt this clip most, and the analysis says which one it was and what each cost.

Models, defense terms and fitted t-SNE maps are cached per process, so a second run on the
same model only pays for the attacks themselves.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..attacks import AttackResult, AttackSettings, attack_parameters, map_attack_names
from ..data.truth import GroundTruth
from ..defenses import BASE_MODEL, available_defenses, craft, get_defense, objectives_for
from ..measures.embeddings import EmbeddingMap, fit_reference_maps
from ..measures.localization import localization_maps, map_attack_success, map_kind, peaks, pointing_game, upsample
from ..measures.perceptibility import db_x, linf_255, psnr, snr_db, ssim
from ..media import Clip
from ..models import AVOutput, ModelConfig
from ..zoo import CHECKPOINTS, cached_model, describe, list_models, load_tensors
from .targets import resolve_region

NO_DEFENSE = "none"
PEAK_MOVED = 1 / 8  # without ground truth, a peak that moved this share of the frame has left its place


@functools.lru_cache(maxsize=16)
def cached_maps(name: str) -> dict[str, EmbeddingMap]:
    card = describe(name)
    return fit_reference_maps(load_tensors(CHECKPOINTS / card["embeddings"]["file"], card["embeddings"]))


def defense_choices() -> list[tuple[str, str]]:
    """(label, key) for the app's defense menu: no defense, then every registered defense the zoo ships."""
    shipped = set(list_models())
    return [("none", NO_DEFENSE)] + [(get_defense(k).name, k) for k in available_defenses() if get_defense(k).entry in shipped]


def resolve_model(model: str, defense: str) -> tuple[str, str | None]:
    """The zoo entry to run for a model and a defense key, and a note when the choice changed it."""
    if defense == NO_DEFENSE:
        return model, None
    chosen = get_defense(defense)
    note = None if model == chosen.base else (
        f"The {chosen.name} defense is built on {chosen.base} (as in the paper), so its defended version runs.")
    return chosen.entry, note


@dataclass
class Trace:
    """The winning objective's attack, step by step (row 0: the clean input), each `(steps + 1,)`."""

    loss: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    label_probability: np.ndarray


@dataclass
class ObjectiveOutcome:
    """One objective tried against the model: what it predicted and how long it took."""

    name: str
    description: str
    predicted: str
    label_probability: float
    seconds: float


@dataclass
class Analysis:
    """Everything one run produced, for the views: numpy on the CPU, batch dimension removed.

    Probabilities `(K,)`; frames `(T, S, S, 3)` float in [0, 1] (the clip's own frames are
    uint8 in `clip`); waveforms `(L,)` in [-1, 1]; maps `(T, S, S)` in [0, 1] or None for a
    model without a map; `label` is the class the attack fought (index into `classes`)."""

    model_name: str
    classes: list[str]
    clip: Clip
    truth: GroundTruth | None
    targeted: bool
    label: int
    clean_probabilities: np.ndarray
    attacked_probabilities: np.ndarray
    adversarial_frames: np.ndarray
    adversarial_waveform: np.ndarray
    delta_frames: np.ndarray
    delta_waveform: np.ndarray
    trace: Trace
    clean_maps: np.ndarray | None
    attacked_maps: np.ndarray | None
    perceptibility: dict[str, float]
    embeddings: dict[str, dict[str, np.ndarray]]  # map name -> {"reference", "labels", "modalities", "clean", "attacked", "kinds"}
    objectives: list[ObjectiveOutcome]
    winner: str
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    map_kind: str | None = None  # a key of measures.localization.MAP_KINDS: what the maps are
    attack: str = ""
    settings: AttackSettings | None = None  # as the attack ran (a map target resolved to its boxes)
    region: str | None = None  # the map target as the person gave it ("silent cello", "x0, y0, x1, y1")
    target_name: str | None = None  # how to name it ("the silent cello", "the target region")
    target_boxes: np.ndarray | None = None  # the map target per frame `(T, 4)`, pixels of the frames

    def map_attack_frames(self) -> np.ndarray | None:
        """Per segment `(T,)` bool, for the attacks on the map: did it do what it is for here?
        (`map_success`); None for other attacks or a model without a map."""
        if self.attack not in map_attack_names() or self.clean_maps is None:
            return None
        return map_success(self.attack, self.clean_maps, self.attacked_maps, self.target_boxes,
                           self.truth.box if self.truth else None)

    @property
    def label_index(self) -> int | None:
        return self.classes.index(self.truth.label) if self.truth and self.truth.label in self.classes else None

    def localization_verdicts(self, maps: np.ndarray | None) -> list[dict]:
        """Per frame: does the map's peak hit the sounding object (`hit`), or a silent
        distractor (`distractor`, and `on`: that distractor's class)?"""
        if self.truth is None or maps is None:
            return []
        hits = pointing_game(maps, self.truth.box)
        boxes = self.truth.distractor_box
        on = [None] * len(maps)
        for slot in range(boxes.shape[1]):
            for index, inside in enumerate(pointing_game(maps, boxes[:, slot])):
                if inside and on[index] is None:
                    on[index] = self.truth.distractor_labels[slot]
        return [{"hit": bool(h), "distractor": d is not None, "on": d} for h, d in zip(hits, on)]


def map_success(attack: str, clean_maps: np.ndarray, maps: np.ndarray, target_boxes: np.ndarray | None,
                source_boxes: np.ndarray | None) -> np.ndarray:
    """Per frame `(T,)` bool, what a map attack is for, on maps `(T, S, S)` in [0, 1]: the peak in
    the target box (`map-target`, boxes `(T, 4)` px), off the sounding object (`map-away`), or
    still on it (`class-only`; whether the class changed is judged apart). Without the sounding
    object's box, "off" and "on" mean the peak moved by more than `PEAK_MOVED` of the frame, or not."""
    if attack == "map-target":
        return map_attack_success(attack, maps, target_boxes, True)
    if source_boxes is not None:
        return map_attack_success(attack, maps, source_boxes, True)
    moved = np.linalg.norm(peaks(clean_maps).astype(float) - peaks(maps), axis=1) > PEAK_MOVED * maps.shape[-1]
    return moved if attack == "map-away" else ~moved


def _features(output: AVOutput) -> dict[str, np.ndarray]:
    return {name: getattr(output, name)[0].detach().float().cpu().numpy() for name in ("audio", "visual", "fused")
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


def _maps(output: AVOutput, size: int) -> np.ndarray | None:
    if output.audio is None or output.visual_map is None:
        return None
    with torch.no_grad():
        return upsample(localization_maps(output), size)[0].cpu().numpy()


class RunTooLong(TimeoutError):
    """A run passed its time cap (a host's limit on how long one Run may compute)."""


STEP_SECONDS: dict[str, deque[float]] = {}  # entry -> seconds per attack step of its last warm runs here
FIRST_GUESS_STEP_SECONDS = 0.1  # before any measurement: PGD on a T = 4 model on 2 CPU cores is ~0.08 s


def estimated_seconds(model: str, defense: str, steps: int) -> tuple[float, int]:
    """How long the attack of a run will take, and how many gradient steps it is: steps times
    the objectives the (defended) entry is attacked with, at the median step time of its last
    warm runs in this process (a first guess before any)."""
    name, _ = resolve_model(model, defense)
    total = int(steps) * len(objectives_for(name))
    warm = STEP_SECONDS.get(name)
    return total * (float(np.median(warm)) if warm else FIRST_GUESS_STEP_SECONDS), total


def _record_step_seconds(name: str, seconds: float) -> None:
    """Keep the last 5 warm step times of an entry; its first run pays for warming up and is left out."""
    if name not in STEP_SECONDS:
        STEP_SECONDS[name] = deque(maxlen=5)
    else:
        STEP_SECONDS[name].append(seconds)


def run(clip: Clip, model: str = BASE_MODEL, defense: str = NO_DEFENSE, attack: str = "pgd",
        settings: AttackSettings | None = None, target: str | None = None, truth: GroundTruth | None = None,
        device: str = "cpu", progress: Callable[[float, str], None] | None = None,
        time_limit: float | None = None, region: str | None = None) -> Analysis:
    """Attack one clip with every objective that applies and measure everything the app shows.

    `settings` carries the budgets (eps_visual in pixel units, 2/255 = 0.0078), steps and seed;
    `target` (a class name) makes the attack targeted; untargeted attacks push away from the
    true label where the clip has ground truth, else from the model's own clean prediction;
    the attacks on the map keep the class the model predicts on the clean clip. `region` is where
    `map-target` moves the map (`avdemo.lab.targets`: "silent cello" or "x0, y0, x1, y1").
    `progress(fraction, description)` hears of every attack step; past `time_limit` seconds
    the run stops with `RunTooLong`.
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    name, note = resolve_model(model, defense)
    if name not in list_models():
        raise ValueError(f"the model {name!r} is not in checkpoints/")
    card = describe(name)
    classes = card["classes"]
    if target is not None and target not in classes:
        raise ValueError(f"unknown target class {target!r}")
    uses = attack_parameters(attack)
    if target is not None and "targeted" not in uses:
        raise ValueError(f"{attack} moves the map, not the class: it takes no target class (set the target to none)")
    settings = (settings or AttackSettings()).replace(targeted=target is not None)
    target_name = None
    if "target_region" in uses:
        if region is not None or settings.target_region is None:
            boxes, target_name = resolve_region(region, truth, clip.frames.shape[1])
            settings = settings.replace(target_region=boxes)
        else:
            target_name = "the target region"
    network = cached_model(name, device)
    waveform, frames = clip.model_inputs(device)
    timings["load"] = time.perf_counter() - clock

    clock = time.perf_counter()
    with torch.no_grad():
        clean = network(waveform, frames)
    if target is not None:
        labels = torch.tensor([classes.index(target)], device=device)
    elif "keep_class" in uses and settings.keep_class:
        labels = clean.logits.argmax(-1)
    elif truth is not None and truth.label in classes:
        labels = torch.tensor([classes.index(truth.label)], device=device)
    else:
        labels = clean.logits.argmax(-1)
    tried: list[tuple[ObjectiveOutcome, AttackResult, AVOutput, np.ndarray | None, tuple]] = []
    objectives = objectives_for(name)
    begun = time.perf_counter()
    size = frames.shape[-1]
    clean_maps = _maps(clean, size)
    target_boxes = (np.broadcast_to(np.asarray(settings.target_region, np.float32), (len(clip.frames), 4)) * size
                    if settings.target_region is not None and "target_region" in uses else None)
    clean_class = int(clean.logits.argmax())

    def step_done(index: int, done: int, total: int) -> None:
        if time_limit is not None and time.perf_counter() - begun > time_limit:
            raise RunTooLong(f"the run passed its time cap of {time_limit:.0f} s at step {done} of {total} "
                             f"(objective {index + 1} of {len(objectives)})")
        if progress is not None:
            progress((index * total + done) / (len(objectives) * total),
                     f"objective {index + 1}/{len(objectives)}: step {done}/{total}")

    for index, objective in enumerate(objectives):
        started = time.perf_counter()
        result, output = craft(objective, name, attack, settings, waveform, frames, labels, device,
                               functools.partial(step_done, index))
        maps = _maps(output, size)
        probabilities = output.logits[0].float().softmax(-1)
        label_probability = float(probabilities[labels[0]])
        score = label_probability if target is not None else -label_probability  # the attacker's gain
        if attack in map_attack_names() and clean_maps is not None:  # first what the attack is for, per frame
            done_frames = map_success(attack, clean_maps, maps, target_boxes, truth.box if truth else None)
            class_right = (int(probabilities.argmax()) == clean_class) == (attack != "class-only")
            score = (int(done_frames.sum()) * class_right, score)
        else:
            score = (0, score)
        outcome = ObjectiveOutcome(objective.name, objective.describe(), classes[int(probabilities.argmax())],
                                   label_probability, time.perf_counter() - started)
        tried.append((outcome, result, output, maps, score))
    best, result, attacked, attacked_maps, _ = max(tried, key=lambda item: item[4])
    timings["attack"] = time.perf_counter() - clock
    _record_step_seconds(name, (time.perf_counter() - begun) / (len(objectives) * settings.steps))

    clock = time.perf_counter()
    delta_waveform = result.delta_waveform[0].cpu().numpy()
    adversarial_frames = result.frames[0].permute(0, 2, 3, 1).cpu().numpy()
    clean_frames = clip.frames.astype(np.float32) / 255
    perceptibility = {
        "linf_255": linf_255(result.delta_frames.cpu().numpy()),
        "psnr_db": float(np.mean([psnr(c, a) for c, a in zip(clean_frames, adversarial_frames)])),
        "ssim": float(np.mean([ssim(c, a) for c, a in zip(clean_frames, adversarial_frames)])),
        "audio_linf": float(np.abs(delta_waveform).max()),
        "snr_db": snr_db(clip.waveform, delta_waveform),
        "db_x": db_x(clip.waveform, delta_waveform),
    }
    timings["perceptibility"] = time.perf_counter() - clock

    clock = time.perf_counter()
    embeddings = _place(cached_maps(name), clean, attacked) if card.get("embeddings") else {}
    timings["tsne"] = time.perf_counter() - clock

    trace = result.trace  # of the winning objective's attack
    notes = [note] if note else []
    if not clip.has_audio:
        notes.append("This file has no audio track: the model hears silence.")
    return Analysis(
        model_name=name, classes=classes, clip=clip, truth=truth, targeted=target is not None, label=int(labels[0]),
        clean_probabilities=clean.logits[0].float().softmax(-1).cpu().numpy(),
        attacked_probabilities=attacked.logits[0].float().softmax(-1).cpu().numpy(),
        adversarial_frames=adversarial_frames, adversarial_waveform=result.waveform[0].cpu().numpy(),
        delta_frames=result.delta_frames[0].permute(0, 2, 3, 1).cpu().numpy(), delta_waveform=delta_waveform,
        trace=Trace(loss=trace.loss[:, 0].float().cpu().numpy(), predicted=trace.predicted[:, 0].cpu().numpy(),
                    confidence=trace.confidence[:, 0].float().cpu().numpy(),
                    label_probability=trace.label_probability[:, 0].float().cpu().numpy()),
        clean_maps=clean_maps, attacked_maps=attacked_maps, perceptibility=perceptibility, embeddings=embeddings,
        objectives=[outcome for outcome, *_ in tried], winner=best.name, notes=notes, seconds=timings,
        map_kind=map_kind(ModelConfig(**card["config"])), attack=attack, settings=settings, region=region,
        target_name=target_name, target_boxes=target_boxes)
