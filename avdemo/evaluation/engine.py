"""Clean and attacked results per clip, computed once and kept in the results store.

The engine runs every objective an entry's defense lists (`avdemo.defenses.objectives`) and
shares work wherever the protocol allows: an adversarial input crafted on a model is judged
on every victim that lists it (the undefended model's own attack is the transfer attack on
each defense that names it), clean passes are cached, and rows already in the store are never
recomputed, so a stopped evaluation resumes where it stopped. An engine can be narrowed to
fewer clips per class (`narrowed`: its rows are the same rows) or dealt into units of clips
for worker processes (`dealt`), and an attack can be run on only the clips that still need
it (`attacked(..., needed=...)`: the strongest-attack cascade).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, default_collate

from ..attacks import AttackSettings, budget_settings, create_attack
from ..defenses import objectives_for
from ..measures.localization import box_mask, ciou, distractor_hits, localization_maps, peaks, pointing_game, upsample
from ..models import AVOutput
from ..zoo import entry_digest, load_defense_term, load_model
from .store import CLEAN, ResultsStore


def _whole(dataset: Dataset) -> Dataset:
    """The dataset a split's clips index into (a Subset's parent): clip ids are its indices."""
    return dataset.dataset if isinstance(dataset, Subset) else dataset


@dataclass(frozen=True)
class Condition:
    """An attack under a named budget on one modality ("audio", "visual" or "both").
    `first_fooling`: white-box attacks keep each clip's first iterate the model gets wrong and
    stop there (`Attack(..., stop_when_fooled=True)`), for robust-accuracy counts only; their
    rows are stored under "<attack>@first". Transfer attacks always run every step: a clip that
    fools the surrogate early would carry a weaker perturbation to the victim."""

    attack: str
    budget: str
    modality: str
    settings: AttackSettings
    first_fooling: bool = False

    @classmethod
    def named(cls, attack: str, budget: str, modality: str, first_fooling: bool = False) -> Condition:
        return cls(attack, budget, modality, budget_settings(budget, modality), first_fooling)

    def stored_as(self, white_box: bool) -> str:
        """The attack's name in the store's rows."""
        return f"{self.attack}@first" if self.first_fooling and white_box else self.attack


class Engine:
    """Per-clip results of zoo models on fixed clips of each split (name -> dataset of dicts
    as `avdemo.data.shards.to_sample` makes them). `data` names the data version in the rows."""

    def __init__(self, splits: dict[str, Dataset], store: ResultsStore, data: str, device: str = "cpu",
                 batch_size: int = 45, log=print):
        self.splits, self.store, self.data, self.device, self.batch_size, self.log = splits, store, data, device, batch_size, log
        self._models: dict[tuple[str, bool], torch.nn.Module] = {}
        self._terms: dict[str, torch.nn.Module | None] = {}
        self._digests: dict[str, str] = {}
        self._counts = {"attack_steps": 0}  # shared with narrowed and dealt views

    @property
    def attack_steps(self) -> int:
        """Forward + backward passes of one clip spent attacking (transformed copies included)."""
        return self._counts["attack_steps"]

    def _view(self, select) -> Engine:
        """The same engine (models, store, counters) on the clips `select(ids)` keeps of each split."""
        view = copy.copy(self)
        view.splits = {}
        for split, dataset in self.splits.items():
            view.splits[split] = Subset(_whole(dataset), select(self.clip_ids(split)))
        return view

    def narrowed(self, per_class: int) -> Engine:
        """The engine on the first `per_class` clips of each class (AV-Synth's labels cycle
        through the classes, so that is every clip whose index is below per_class x classes):
        the rows are the same rows, so a wider run has already measured them."""
        def select(ids: list[int]) -> list[int]:
            limit = per_class * len(self._classes())
            return [clip for clip in ids if clip < limit]
        return self._view(select)

    def dealt(self, hands: int) -> list[Engine]:
        """Each split's clips dealt like cards into `hands` views of that split alone (every
        `hands`-th clip from the j-th): the units of work that worker processes take in turn, so
        one whose clips fell early takes more and none idles while another finishes its share.
        A hand's clips are fixed by `hands` alone, so its batches (and random starts) are too."""
        views = []
        for split in self.splits:
            ids = self.clip_ids(split)
            for first in range(min(hands, len(ids))):
                view = copy.copy(self)
                view.splits = {split: Subset(_whole(self.splits[split]), ids[first::hands])}
                views.append(view)
        return views

    def _classes(self) -> list[str]:
        return _whole(next(iter(self.splits.values()))).classes

    # -- models ------------------------------------------------------------------------------
    def model(self, name: str, straight_through: bool = False) -> torch.nn.Module:
        key = (name, straight_through)
        if key not in self._models:
            model = load_model(name, self.device)
            if straight_through:
                if not hasattr(model, "straight_through"):
                    raise ValueError(f"{name} has no inference-time wrapper to attack with BPDA")
                model.straight_through = True
            self._models[key] = model
        return self._models[key]

    def term(self, name: str) -> torch.nn.Module | None:
        if name not in self._terms:
            self._terms[name] = load_defense_term(name, self.device)
        return self._terms[name]

    # -- clips -------------------------------------------------------------------------------
    def clip_ids(self, split: str) -> list[int]:
        dataset = self.splits[split]
        return list(dataset.indices) if isinstance(dataset, Subset) else list(range(len(dataset)))

    def batches(self, split: str, clips: Sequence[int] | None = None) -> Iterable[tuple[list[int], dict]]:
        """(clip ids, collated batch) over the split's clips, or over `clips` only."""
        base = _whole(self.splits[split])
        ids = self.clip_ids(split) if clips is None else list(clips)
        for start in range(0, len(ids), self.batch_size):
            chunk = ids[start:start + self.batch_size]
            yield chunk, default_collate([base[i] for i in chunk])

    def _key(self, model: str, attack: str, objective: str, budget: str, modality: str, split: str, clip: int) -> dict:
        if model not in self._digests:
            self._digests[model] = entry_digest(model)
        return {"model": model, "sha256": self._digests[model], "attack": attack, "objective": objective, "budget": budget,
                "modality": modality, "data": self.data, "split": split, "clip": clip}

    # -- results -----------------------------------------------------------------------------
    def clean(self, model: str, split: str) -> list[dict]:
        """Clean rows of `model` on every clip of `split`, in clip order."""
        key = lambda clip: self._key(model, CLEAN, CLEAN, CLEAN, CLEAN, split, clip)  # noqa: E731
        network = self.model(model)
        for ids, batch in self.batches(split, [clip for clip in self.clip_ids(split) if not self.store.get(**key(clip))]):
            with torch.no_grad():
                output = network(batch["waveform"].to(self.device), batch["frames"].to(self.device))
            self.store.add(self._rows(output, batch, [key(clip) for clip in ids], None))
        return [self.store.get(**key(clip)) for clip in self.clip_ids(split)]

    def attacked(self, victims: Sequence[str], condition: Condition, split: str,
                 needed: dict[str, set[int]] | None = None) -> dict[str, dict[str, list[dict | None]]]:
        """victim -> objective -> rows (clip order) under `condition`, for every objective each
        victim's defense lists. Each adversarial input is crafted once per crafting setup
        (surrogate model, whose training term, BPDA or not) and judged on every victim that uses it.
        `needed` (victim -> clip ids): attack only those clips (a setup crafts on the union its
        victims need); a clip no victim needed and the store does not hold has the row None."""
        plan: dict[tuple[str, str | None, bool, bool], list[tuple[str, str]]] = defaultdict(list)
        white_box = {}
        for victim in victims:
            for objective in objectives_for(victim):
                white_box[victim, objective.name] = objective.surrogate == victim
                stop = condition.first_fooling and white_box[victim, objective.name]
                setup = (objective.surrogate, victim if objective.term else None, objective.straight_through, stop)
                plan[setup].append((victim, objective.name))
        key = lambda victim, objective, clip: self._key(  # noqa: E731
            victim, condition.stored_as(white_box[victim, objective]), objective, condition.budget, condition.modality,
            split, clip)
        clean = {victim: {row["clip"]: row for row in self.clean(victim, split)} for victim in victims}
        for (surrogate, term_of, straight_through, stop), targets in plan.items():
            wanted = None if needed is None else set().union(*(needed.get(victim, set()) for victim, _ in targets))
            lacking = {(victim, objective): {clip for clip in self.clip_ids(split) if (wanted is None or clip in wanted)
                                             and not self.store.get(**key(victim, objective, clip))}
                       for victim, objective in targets}
            # only the clips some target lacks: a stored row is never recomputed, even beside a new clip in a batch
            clips = [clip for clip in self.clip_ids(split) if any(clip in todo for todo in lacking.values())]
            for ids, batch in self.batches(split, clips):
                missing = [target for target in targets if lacking[target] & set(ids)]
                waveform, frames = batch["waveform"].to(self.device), batch["frames"].to(self.device)
                labels = batch["label"].to(self.device)
                attack = create_attack(condition.attack, self.model(surrogate, straight_through), condition.settings,
                                       extra_loss=self.term(term_of) if term_of else None)
                result = attack(waveform, frames, labels, stop_when_fooled=stop)
                self._counts["attack_steps"] += attack.passes
                for victim, objective in missing:
                    if victim == surrogate:  # BPDA's forward is the victim's own forward
                        output = result.output
                    else:
                        with torch.no_grad():
                            output = self.model(victim)(result.waveform, result.frames)
                    keys = [key(victim, objective, clip) for clip in ids]
                    rows = self._rows(output, batch, keys, [clean[victim][clip] for clip in ids])
                    self.store.add(row for row, clip in zip(rows, ids) if clip in lacking[victim, objective])
        return {victim: {objective.name: [self.store.get(**key(victim, objective.name, clip)) for clip in self.clip_ids(split)]
                         for objective in objectives_for(victim)} for victim in victims}

    def _rows(self, output: AVOutput, batch: dict, keys: list[dict], clean: list[dict] | None) -> list[dict]:
        logits = output.logits.detach().float().cpu()
        probabilities = logits.softmax(-1)
        predicted = logits.argmax(-1).tolist()
        labels = batch["label"].tolist()
        rows = []
        for index, key in enumerate(keys):
            label = labels[index]
            row = {**key, "label": label, "pred": predicted[index], "correct": predicted[index] == label,
                   "label_prob": round(float(probabilities[index, label]), 5)}
            clean_pred = predicted[index] if clean is None else clean[index]["pred"]
            row.update(clean_pred=clean_pred, clean_correct=clean_pred == label)
            rows.append(row)
        if "box" in batch and output.audio is not None and output.visual_map is not None:
            for row, scores in zip(rows, _localization(output, batch)):
                row.update(scores)
        return rows


def _localization(output: AVOutput, batch: dict) -> list[dict]:
    """Per clip, per frame: the map's peak [x, y], hit on the source, on a distractor, cIoU."""
    with torch.no_grad():
        maps = upsample(localization_maps(output), batch["frames"].shape[-1]).cpu().numpy()
    frames = maps.shape[1]
    flat = maps.reshape(-1, *maps.shape[2:])
    boxes = batch["box"].flatten(0, 1).numpy()
    distractors = batch["distractor_box"].flatten(0, 1).numpy()
    points = peaks(flat).reshape(len(maps), frames, 2)
    hits = pointing_game(flat, boxes).reshape(len(maps), frames)
    on_distractor = (distractor_hits(flat, distractors) if distractors.shape[1] else np.zeros(len(flat), bool)
                     ).reshape(len(maps), frames)
    cious = ciou(flat, box_mask(boxes, flat.shape[-1])).reshape(len(maps), frames)
    return [{"peak": points[i].tolist(), "hit": hits[i].tolist(), "distractor": on_distractor[i].tolist(),
             "ciou": [round(float(c), 4) for c in cious[i]]} for i in range(len(maps))]


def accuracy(rows: Sequence[dict]) -> float:
    """Share of rows classified right."""
    return sum(row["correct"] for row in rows) / max(len(rows), 1)


def robust(rows_by_objective: dict[str, list[dict]]) -> list[bool]:
    """Per clip, right under every objective: the worst case a defense is judged by."""
    columns = list(rows_by_objective.values())
    return [all(row["correct"] for row in rows) for rows in zip(*columns, strict=True)]


def robust_accuracy(rows_by_objective: dict[str, list[dict]]) -> float:
    outcome = robust(rows_by_objective)
    return sum(outcome) / max(len(outcome), 1)


def attack_success_rate(rows: Sequence[dict]) -> float:
    """Share of the clips the victim classifies right when clean that the attack makes it get wrong."""
    right = [row for row in rows if row["clean_correct"]]
    return sum(not row["correct"] for row in right) / max(len(right), 1)


