"""One run of the lab, without any UI: a decoded clip, a zoo model (possibly defended), an
attack; out come the clean and attacked predictions, localization maps, perceptibility, the
attack trace and the clip's place in the model's t-SNE maps.

Torch stays inside this module: what `run` hands to the views is an `Analysis` of numpy
arrays on the CPU with the batch dimension removed. A defended model is attacked with every
objective its defense lists (`avdemo.defenses`), one after the other; the views show the
objective that hurt this clip most, and the analysis says which one it was and what each cost.

Black-box transfer: `run(..., craft_on=surrogate)` crafts the attack on another zoo entry (its
own white-box run, kept as `Analysis.surrogate`) and judges the same adversarial input on the
chosen model, which the attacker never touches. `run_masking` runs the model on the clip with
a share of its time masked (`avdemo.data.masking`), no attack, as the same kind of `Analysis`.

Models, defense terms and fitted t-SNE maps are cached per process, so a second run on the
same model only pays for the attacks themselves.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..attacks import AttackResult, AttackSettings, AttackTrace, attack_parameters, map_attack_names
from ..data.masking import MODES, apply_mask, check_share, draw_mask
from ..data.truth import GroundTruth
from ..defenses import BASE_MODEL, available_defenses, craft, get_defense, objectives_for, parse_objective
from ..measures.embeddings import EmbeddingMap, fit_reference_maps
from ..measures.localization import localization_maps, map_attack_success, map_kind, peaks, pointing_game, upsample
from ..measures.perceptibility import db_x, linf_255, psnr, snr_db, ssim
from ..media import Clip
from ..models import AVOutput, ModelConfig
from ..zoo import CHECKPOINTS, cached_model, describe, list_models, load_tensors
from .targets import resolve_region

NO_DEFENSE = "none"
SAME_MODEL = "same"  # craft the attack on the model shown (white-box), the default
MASKING = "masking"  # the `attack` of an analysis of a masked clip (`run_masking`): no attack at all
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
    """The winning objective's attack, step by step (row 0: the clean input), each `(steps + 1,)`:
    the objective, the predicted class, its probability, the probability of the label attacked,
    and, on the model the attack was crafted on, the temporal variance of its segment features
    (>= 0) and the cosine of its audio and visual features (in [-1, 1]), NaN where the model lacks
    them (`avdemo.measures.alignment`)."""

    loss: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    label_probability: np.ndarray
    temporal_variance: np.ndarray
    modality_cosine: np.ndarray


@dataclass
class Masking:
    """What `run_masking` hid: a share in [0, 1] of the clip's time in the mode's modalities (a key
    of `avdemo.data.masking.MODES`), drawn with `seed`; `frames` `(T,)` bool, True where a frame was
    replaced by the fill; `samples` `(L,)` bool, True where the waveform was silenced; `units`, the
    number of equal windows the clip's time was cut into."""

    share: float
    mode: str
    seed: int
    units: int
    frames: np.ndarray
    samples: np.ndarray


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
    model without a map; `label` is the class the attack fought (index into `classes`).
    "Adversarial" is the input the model was judged on: attacked or, for a masked clip
    (`masking`, attack `MASKING`, no trace), masked; the deltas are that input minus the clean one.
    `surrogate` is the white-box run on the model the attack was crafted on, when that was not
    this one (black-box transfer: the same adversarial input, judged on both)."""

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
    trace: Trace | None
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
    surrogate: Analysis | None = None  # crafted on another model: its own (white-box) view of the same input
    masking: Masking | None = None

    @property
    def after(self) -> str:
        """What happened to the clip, in a word: "attacked" or "masked"."""
        return "masked" if self.masking is not None else "attacked"

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


def surrogate_entry(craft_on: str | None, entry: str) -> str | None:
    """The zoo entry to craft an attack on `entry` with, when it is another one: None for
    `SAME_MODEL` (or `entry` itself: white-box), else `craft_on`, which must be a shipped entry
    with the same classes in the same order (a label must mean the same class to both).
    Raises ValueError, saying why, for anything else."""
    if craft_on in (None, "", SAME_MODEL) or craft_on == entry:
        return None
    if craft_on not in list_models():
        raise ValueError(f"cannot craft the attack on {craft_on!r}: there is no such model in checkpoints/")
    if describe(craft_on)["classes"] != describe(entry)["classes"]:
        raise ValueError(f"cannot craft the attack on {craft_on} for {entry}: the two models do not have the same "
                         f"class list, so a label would mean different things to them")
    return craft_on


def estimated_seconds(model: str, defense: str, steps: int, craft_on: str = SAME_MODEL) -> tuple[float, int]:
    """How long the attack of a run will take, and how many gradient steps it is: steps times
    the objectives the (defended) entry is attacked with (one when crafted on another model), at
    the median step time of the crafting entry's last warm runs in this process (a first guess
    before any)."""
    name, _ = resolve_model(model, defense)
    surrogate = surrogate_entry(craft_on, name)
    crafter, objectives = (surrogate, 1) if surrogate else (name, len(objectives_for(name)))
    total = int(steps) * objectives
    warm = STEP_SECONDS.get(crafter)
    return total * (float(np.median(warm)) if warm else FIRST_GUESS_STEP_SECONDS), total


def _record_step_seconds(name: str, seconds: float) -> None:
    """Keep the last 5 warm step times of an entry; its first run pays for warming up and is left out."""
    if name not in STEP_SECONDS:
        STEP_SECONDS[name] = deque(maxlen=5)
    else:
        STEP_SECONDS[name].append(seconds)


def _checked_entry(model: str, defense: str) -> tuple[str, str | None, list[str]]:
    """The zoo entry of a model and defense (`resolve_model`), its note and its classes; ValueError if not shipped."""
    name, note = resolve_model(model, defense)
    if name not in list_models():
        raise ValueError(f"the model {name!r} is not in checkpoints/")
    return name, note, describe(name)["classes"]


def _notes(clip: Clip, note: str | None) -> list[str]:
    return ([note] if note else []) + ([] if clip.has_audio else ["This file has no audio track: the model hears silence."])


def _judged_input(clip: Clip, clean: tuple[torch.Tensor, torch.Tensor], judged: tuple[torch.Tensor, torch.Tensor],
                  timings: dict[str, float]) -> dict:
    """The input a model was judged on, its change from the clean input and how perceptible that
    is, as `Analysis` fields. `clean` and `judged` are (waveform `(1, L)` in [-1, 1], frames
    `(1, T, 3, S, S)` in [0, 1]); adds the time taken to `timings["perceptibility"]`."""
    clock = time.perf_counter()
    delta_waveform = (judged[0] - clean[0])[0].cpu().numpy()
    delta_frames = (judged[1] - clean[1])[0].permute(0, 2, 3, 1).cpu().numpy()
    adversarial_frames = judged[1][0].permute(0, 2, 3, 1).cpu().numpy()
    clean_frames = clip.frames.astype(np.float32) / 255
    changed = [psnr(c, a) for c, a, d in zip(clean_frames, adversarial_frames, delta_frames) if d.any()]
    perceptibility = {
        "linf_255": linf_255(delta_frames),
        "psnr_db": float(np.mean(changed)) if changed else math.inf,  # over the frames that changed (a mask hides some)
        "ssim": float(np.mean([ssim(c, a) for c, a in zip(clean_frames, adversarial_frames)])),
        "audio_linf": float(np.abs(delta_waveform).max()),
        "snr_db": snr_db(clip.waveform, delta_waveform),
        "db_x": db_x(clip.waveform, delta_waveform),
    }
    timings["perceptibility"] = time.perf_counter() - clock
    return {"adversarial_frames": adversarial_frames, "adversarial_waveform": judged[0][0].cpu().numpy(),
            "delta_frames": delta_frames, "delta_waveform": delta_waveform, "perceptibility": perceptibility}


def _model_view(name: str, clean: AVOutput, judged: AVOutput, clean_maps: np.ndarray | None,
                judged_maps: np.ndarray | None, timings: dict[str, float], place: bool = True) -> dict:
    """What one entry made of the clean and the judged input, as `Analysis` fields: its outputs'
    probabilities, maps `(T, S, S)` (given), the clip's t-SNE placements (unless `place` is off:
    a view no t-SNE figure shows) and what its map is. Adds the placement's time to `timings["tsne"]`."""
    card = describe(name)
    clock = time.perf_counter()
    embeddings = _place(cached_maps(name), clean, judged) if place and card.get("embeddings") else {}
    timings["tsne"] = timings.get("tsne", 0.0) + time.perf_counter() - clock
    return {"model_name": name, "classes": card["classes"],
            "clean_probabilities": clean.logits[0].float().softmax(-1).cpu().numpy(),
            "attacked_probabilities": judged.logits[0].float().softmax(-1).cpu().numpy(),
            "clean_maps": clean_maps, "attacked_maps": judged_maps, "embeddings": embeddings,
            "map_kind": map_kind(ModelConfig(**card["config"]))}


def _trace(trace: AttackTrace) -> Trace:
    """The first clip's trace of an attack (each field `(steps + 1, B)` -> `(steps + 1,)`), in numpy."""
    columns = {f.name: getattr(trace, f.name)[:, 0] for f in dataclasses.fields(Trace)}
    return Trace(**{name: (c.float() if c.is_floating_point() else c).cpu().numpy() for name, c in columns.items()})


def _label(clean: AVOutput, truth: GroundTruth | None, classes: list[str]) -> int:
    """The class an untargeted run is about: the clip's true class where the model knows it, else the clean prediction."""
    return classes.index(truth.label) if truth is not None and truth.label in classes else int(clean.logits.argmax())


def run(clip: Clip, model: str = BASE_MODEL, defense: str = NO_DEFENSE, attack: str = "pgd",
        settings: AttackSettings | None = None, target: str | None = None, truth: GroundTruth | None = None,
        device: str = "cpu", progress: Callable[[float, str], None] | None = None,
        time_limit: float | None = None, region: str | None = None, craft_on: str = SAME_MODEL) -> Analysis:
    """Attack one clip with every objective that applies and measure everything the app shows.

    `settings` carries the budgets (eps_visual in pixel units, 2/255 = 0.0078), steps and seed;
    `target` (a class name) makes the attack targeted; untargeted attacks push away from the
    true label where the clip has ground truth, else from the model's own clean prediction;
    the attacks on the map keep the class the model predicts on the clean clip. `region` is where
    `map-target` moves the map (`avdemo.lab.targets`: "silent cello" or "x0, y0, x1, y1").
    `craft_on`, another zoo entry with the same classes (`surrogate_entry`), makes it a black-box
    transfer: the attack is crafted there, white-box, with its own objective (the clean prediction
    it fights or keeps is that entry's), and the same adversarial input is judged on the model with
    its defense; the analysis returned is the model's, its `surrogate` the crafting entry's.
    `progress(fraction, description)` hears of every attack step; past `time_limit` seconds
    the run stops with `RunTooLong`.
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    name, note, classes = _checked_entry(model, defense)
    surrogate = surrogate_entry(craft_on, name)
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
        attacker_clean = cached_model(surrogate, device)(waveform, frames) if surrogate else clean
    if target is not None:
        labels = torch.tensor([classes.index(target)], device=device)
    elif "keep_class" in uses and settings.keep_class:
        labels = attacker_clean.logits.argmax(-1)
    else:
        labels = torch.tensor([_label(attacker_clean, truth, classes)], device=device)
    tried: list[tuple[ObjectiveOutcome, AttackResult, AVOutput, np.ndarray | None, tuple]] = []
    objectives = [parse_objective(f"transfer:{surrogate}", name)] if surrogate else objectives_for(name)
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
    _record_step_seconds(surrogate or name, (time.perf_counter() - begun) / (len(objectives) * settings.steps))

    judged = _judged_input(clip, (waveform, frames), (result.waveform, result.frames), timings)
    analysis = Analysis(
        **_model_view(name, clean, attacked, clean_maps, attacked_maps, timings), **judged, clip=clip, truth=truth,
        targeted=target is not None, label=int(labels[0]), trace=_trace(result.trace),  # of the winning objective's attack
        objectives=[outcome for outcome, *_ in tried], winner=best.name, notes=_notes(clip, note), seconds=timings,
        attack=attack, settings=settings, region=region, target_name=target_name, target_boxes=target_boxes)
    if surrogate:  # what the attacker saw: the same input on the model it crafted on, white-box
        own = parse_objective("ce", surrogate)
        on_surrogate = result.output.logits[0].float().softmax(-1)
        analysis.surrogate = dataclasses.replace(
            analysis, **_model_view(surrogate, attacker_clean, result.output, _maps(attacker_clean, size),
                                    _maps(result.output, size), timings, place=False),  # column B shows no t-SNE
            objectives=[ObjectiveOutcome(own.name, own.describe(), classes[int(on_surrogate.argmax())],
                                         float(on_surrogate[labels[0]]), best.seconds)],
            winner=own.name, notes=_notes(clip, None))
    return analysis


def run_masking(clip: Clip, model: str = BASE_MODEL, defense: str = NO_DEFENSE, share: float = 0.2,
                mode: str = "both-sync", seed: int = 0, truth: GroundTruth | None = None, device: str = "cpu") -> Analysis:
    """The model (with its defense) on the clip with a share in [0, 1] of its time masked, and no
    attack: `mode` is a key of `avdemo.data.masking.MODES` ("visual", "audio", "both-sync": both at
    the same moments, "both-async": both at different moments), the windows drawn by
    `avdemo.data.masking.draw_mask` with the int `seed` (silence in the audio, the ImageNet-mean
    frame in the video). Returns an `Analysis` like an attack's: attack `MASKING`, the masked clip
    as the judged ("adversarial") input, no trace and no objective, `masking` saying what was
    hidden; its label is the true class where the clip has one, else the clean prediction.
    Bad settings raise ValueError."""
    if mode not in MODES:
        raise ValueError(f"unknown masking mode {mode!r}; choose one of {', '.join(MODES)}")
    share = check_share(share)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    name, note, classes = _checked_entry(model, defense)
    network = cached_model(name, device)
    waveform, frames = clip.model_inputs(device)
    timings["load"] = time.perf_counter() - clock

    clock = time.perf_counter()
    modality, synchronous = MODES[mode]
    drawn = draw_mask(1, share, modality, synchronous, generator=int(seed), device=device)
    masked = apply_mask(waveform, frames, drawn)
    with torch.no_grad():
        clean, judged = network(waveform, frames), network(*masked)
    size = frames.shape[-1]
    clean_maps, judged_maps = _maps(clean, size), _maps(judged, size)
    timings["inference"] = time.perf_counter() - clock
    hidden = Masking(share, mode, int(seed), drawn.units, drawn.frame_mask(frames.shape[1])[0].cpu().numpy(),
                     drawn.sample_mask(waveform.shape[1])[0].cpu().numpy())
    return Analysis(**_model_view(name, clean, judged, clean_maps, judged_maps, timings),
                    **_judged_input(clip, (waveform, frames), masked, timings), clip=clip, truth=truth, targeted=False,
                    label=_label(clean, truth, classes), trace=None, objectives=[], winner="", notes=_notes(clip, note),
                    seconds=timings, attack=MASKING, masking=hidden)
