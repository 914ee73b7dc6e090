"""Adversarial training: PGD-AT (Madry et al., 2018) and the ICLR 2025 efficient audio-visual
adversarial training (AVAT, §5.3), as training procedures over any audio-visual model.

**PGD-AT** trains on PGD examples crafted afresh for every batch: `attack_steps` steps of
2.5 eps / steps from a uniform random start, on both modalities with separate budgets (or on
one), at the recipe's named budget (by default the visible one: audio 0.01, pixels 4/255).

**AVAT** makes crafting cheaper and the examples more varied:
- *Efficient crafting.* The clip's T segments (frame t with its audio window) are cut into
  groups of `segment_frames` consecutive segments; in each group a share `sample_share` (rho)
  of the segments is sampled, at least one. The attack runs on the sampled segments only, and
  the perturbation of a group (the mean over its sampled segments: one frame perturbation and
  one audio-window perturbation) is shared by every segment of the group. With T = 4, one
  group and rho = 25 %, the attack sees one frame and its window instead of four.
- *The TMA objective.* Cross-entropy minus lambda_1 times the temporal variance minus lambda_2
  times the audio-visual cosine (`avdemo.attacks.tma`), summed over the sampled input and
  `copies` (N) transformed copies, with momentum.
- *The randomized curriculum* (`avdemo.defenses.curriculum`): during crafting a share p_r of
  the sampled input's time is masked (`avdemo.data.masking`, both modalities, the same moments)
  and a share p_d = p_r of the fusion layer's units is dropped; p_r rises through each cycle
  by the recipe's schedule, and the attack's steps rise from `min_attack_steps` to
  `attack_steps` with it.

Both warm eps up linearly from 0 over the first `eps_warmup` share of training (the usual
start of adversarial training, which keeps a fine-tuned model from collapsing), and both
craft in eval mode (the attack base class does), so batch norm's statistics follow the
examples trained on, not the attack's intermediate steps.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import AttackSettings, create_attack
from ..attacks.budgets import budget_settings
from ..data.masking import temporal_mask
from ..models.segments import segment_waveform, window_length, window_starts
from .curriculum import Curriculum
from .registry import Defense, TrainingProcedure, register_defense

PROCEDURE_OBJECTIVES = ("ce", "transfer:av-concat")
"""A procedure adds no term and no wrapper: the model is attacked end to end, and by transfer
from the undefended model it was fine-tuned from."""
STEP_FACTOR = 2.5
"""Step size = 2.5 eps / steps (Madry et al.): few steps still reach the ball's surface."""


def training_budget(recipe, factor: float, steps: int, attack: str) -> AttackSettings:
    """The recipe's named budget on its modality, scaled by `factor` (the warm-up), with steps
    of 2.5 eps / steps; PGD starts at random, as Madry's training does."""
    base = budget_settings(recipe.attack_budget, recipe.attack_modality)

    def scaled(eps):
        return tuple(factor * e for e in eps) if isinstance(eps, tuple) else factor * eps

    def step(eps):
        return tuple(min(e, STEP_FACTOR * e / steps) for e in eps) if isinstance(eps, tuple) else min(eps, STEP_FACTOR * eps / steps)

    audio, visual = scaled(base.eps_audio), scaled(base.eps_visual)
    return base.replace(eps_audio=audio, eps_visual=visual, steps=steps, step_audio=step(audio), step_visual=step(visual),
                        random_start=attack == "pgd")


def warmup_factor(recipe, position: float) -> float:
    """The share of the full budget at a training position in [0, 1]."""
    return 1.0 if recipe.eps_warmup <= 0 else min(1.0, position / recipe.eps_warmup)


class PGDTraining(TrainingProcedure):
    """Madry's adversarial training: train on fresh PGD examples of each batch."""

    def __init__(self, recipe):
        self.recipe = recipe

    def inputs(self, model, waveform, frames, labels, position):
        factor = warmup_factor(self.recipe, position)
        if factor == 0:
            return waveform, frames
        settings = training_budget(self.recipe, factor, self.recipe.attack_steps, "pgd")
        result = create_attack("pgd", model, settings)(waveform, frames, labels)
        return result.waveform, result.frames

    def describe(self) -> dict:
        return {"attack": "pgd", "budget": self.recipe.attack_budget, "modality": self.recipe.attack_modality,
                "steps": self.recipe.attack_steps, "step": f"{STEP_FACTOR} eps / steps", "random_start": True,
                "eps_warmup": self.recipe.eps_warmup}


class CurriculumView(nn.Module):
    """The model as the AVAT attack sees it: its input masked (a share `ratio` of the time, both
    modalities at the same moments, one draw per batch kept through the attack's steps) and a
    share `ratio` of its fusion layer's units dropped before the classifier."""

    def __init__(self, model: nn.Module, ratio: float, generator: torch.Generator):
        super().__init__()
        self.model, self.ratio = model, ratio
        self.mask_seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        self.dropout_seed = int(torch.randint(2**31 - 1, (1,), generator=generator))

    def forward(self, waveform: torch.Tensor, frames: torch.Tensor):
        waveform, frames = temporal_mask(waveform, frames, self.ratio, "both", synchronous=True, generator=self.mask_seed)
        output = self.model(waveform, frames)
        with torch.random.fork_rng(devices=[output.fused.device] if output.fused.is_cuda else []):
            torch.manual_seed(self.dropout_seed)  # the same units dropped at every step of one attack
            fused = F.dropout(output.fused, self.ratio, training=True)
        return dataclasses.replace(output, fused=fused, logits=self.model.classifier(fused))


def sample_segments(steps: int, group: int, share: float, batch: int, generator: torch.Generator) -> torch.Tensor:
    """For each clip, which segments the attack sees: `(B, G, k)` segment indices, k of each
    group of `group` consecutive segments (k = max(1, round(share x size)) of the first group's
    size; a shorter last group gives min(k, its size), repeating none)."""
    groups = [list(range(start, min(start + group, steps))) for start in range(0, steps, group)]
    count = max(1, round(share * len(groups[0])))
    chosen = torch.empty(batch, len(groups), count, dtype=torch.long)
    for clip in range(batch):
        for g, members in enumerate(groups):
            order = torch.randperm(len(members), generator=generator)
            picks = [members[i] for i in order[:count].tolist()]
            chosen[clip, g] = torch.tensor(picks + picks[:1] * (count - len(picks)))
    return chosen


def group_of(steps: int, group: int) -> list[int]:
    """The group index of each of `steps` segments."""
    return [t // group for t in range(steps)]


def share_perturbation(waveform: torch.Tensor, frames: torch.Tensor, delta_windows: torch.Tensor,
                       delta_frames: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Spread each group's perturbation over its segments: waveform `(B, L)` in [-1, 1], frames
    `(B, T, 3, H, W)` in [0, 1], per-group perturbations of one window `(B, G, W)` and one frame
    `(B, G, 3, H, W)` -> adversarial (waveform, frames) in range. Each window of the clip gets
    its group's window perturbation (where windows overlap, the later one), each frame its
    group's frame perturbation."""
    steps, total = frames.shape[1], waveform.shape[1]
    owner = group_of(steps, group)
    adv_frames = (frames + delta_frames[:, owner]).clamp(0, 1)
    length = window_length(total, steps)
    delta = torch.zeros_like(waveform)
    for t, start in enumerate(window_starts(total, steps)):
        low, high = max(start, 0), min(start + length, total)
        delta[:, low:high] = delta_windows[:, owner[t], low - start:high - start]
    return (waveform + delta).clamp(-1, 1), adv_frames


class EfficientTraining(TrainingProcedure):
    """AVAT: TMA examples crafted on sampled segments, shared within each group, under the curriculum."""

    def __init__(self, recipe):
        self.recipe = recipe
        self.curriculum = Curriculum(recipe.curriculum_schedule, recipe.curriculum_low, recipe.curriculum_high,
                                     recipe.curriculum_cycles, recipe.min_attack_steps, recipe.attack_steps)
        self.generator = torch.Generator().manual_seed(recipe.seed + 7)

    def inputs(self, model, waveform, frames, labels, position):
        factor = warmup_factor(self.recipe, position)
        if factor == 0:
            return waveform, frames
        batch, steps = frames.shape[:2]
        chosen = sample_segments(steps, self.recipe.segment_frames, self.recipe.sample_share, batch, self.generator)
        groups, count = chosen.shape[1:]
        rows = torch.arange(batch)[:, None]
        flat = chosen.view(batch, -1).to(frames.device)
        windows = segment_waveform(waveform, steps)  # (B, T, W)
        sampled_windows = windows[rows.to(frames.device), flat]  # (B, G k, W)
        sampled_frames = frames[rows.to(frames.device), flat]  # (B, G k, 3, H, W)
        ratio = self.curriculum.ratio(position)
        view = CurriculumView(model, ratio, self.generator)
        settings = training_budget(self.recipe, factor, self.curriculum.steps(position), "tma").replace(
            copies=self.recipe.copies, transforms=tuple(self.recipe.copy_transforms),
            lambda_temporal=self.recipe.lambda_temporal, lambda_misalign=self.recipe.lambda_misalign,
            seed=int(torch.randint(2**31 - 1, (1,), generator=self.generator)))
        result = create_attack("tma", view, settings)(sampled_windows.flatten(1), sampled_frames, labels)
        width = windows.shape[-1]
        delta_windows = result.delta_waveform.view(batch, groups, count, width).mean(dim=2)
        delta_frames = result.delta_frames.view(batch, groups, count, *frames.shape[2:]).mean(dim=2)
        return share_perturbation(waveform, frames, delta_windows, delta_frames, self.recipe.segment_frames)

    def describe(self) -> dict:
        r = self.recipe
        return {"attack": "tma", "budget": r.attack_budget, "modality": r.attack_modality,
                "segment_frames": r.segment_frames, "sample_share": r.sample_share, "copies": r.copies,
                "copy_transforms": list(r.copy_transforms), "lambda_temporal": r.lambda_temporal,
                "lambda_misalign": r.lambda_misalign, "curriculum": dataclasses.asdict(self.curriculum),
                "step": f"{STEP_FACTOR} eps / steps", "eps_warmup": r.eps_warmup}


register_defense(Defense(
    key="pgd-at", name="PGD-AT", kind="training procedure", entry="av-concat-pgdat", objectives=PROCEDURE_OBJECTIVES,
    description="av-concat fine-tuned on PGD examples at the visible budget (Madry et al.'s adversarial training)",
    make_procedure=PGDTraining))
register_defense(Defense(
    key="avat", name="AVAT (ICLR 2025)", kind="training procedure", entry="av-concat-avat",
    objectives=PROCEDURE_OBJECTIVES, make_procedure=EfficientTraining,
    description="av-concat fine-tuned by the ICLR 2025 efficient adversarial training: TMA examples crafted on "
                "sampled segments and shared, under a masking and dropout curriculum"))
