"""The shared machinery of every L-inf attack on (waveform, frames) pairs.

An attack maximises `CE(model(x_a, x_v), y) + extra_loss` (or, in targeted mode,
`-CE(model(x_a, x_v), target) + extra_loss`) over the adversarial inputs, keeping each
attacked modality inside its own L-inf ball around the *clean* input and inside its valid
range: waveform in [-1, 1], pixels in [0, 1]. A modality whose budget is 0 is never touched
and comes back bit-identical.

Budgets are in input units: eps_audio in waveform amplitude, eps_visual in pixel units
(8/255 ~ 0.031); eps_visual may also be one value per RGB channel, which is how the paper's
budgets, defined in ImageNet-normalised units, map to pixel space (see `presets`).

Every attack reads its options from one `AttackSettings` object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..measures.alignment import has_both_features, modality_cosine, temporal_variance
from ..models import AVOutput
from ..models.ensemble import EnsembleOutput
from .settings import AttackSettings, Budget

ExtraLoss = Callable[[AVOutput, torch.Tensor], torch.Tensor]

MODALITIES = ("audio", "visual")
VALID_RANGE = {"audio": (-1.0, 1.0), "visual": (0.0, 1.0)}
UNITS = {"audio": "waveform amplitude", "visual": "pixel units, 1/255 = 0.0039"}


@dataclass
class AttackTrace:
    """Per-step record for the UI: row k is where step k + 1's gradient was taken (row 0 the
    clean input, or the random start), the last row the final adversarial input.

    Each field is `(steps + 1, B)`: the attacker's objective, the predicted class, its
    softmax probability, the probability of the label (true class or target), and the two
    feature statistics of `avdemo.measures.alignment` (NaN where the model lacks the features):
    the temporal variance of the segment features and the audio-visual cosine.
    """

    loss: torch.Tensor
    predicted: torch.Tensor
    confidence: torch.Tensor
    label_probability: torch.Tensor
    temporal_variance: torch.Tensor
    modality_cosine: torch.Tensor


@dataclass
class AttackResult:
    """Adversarial inputs `(B, L)` and `(B, T, 3, H, W)`, their perturbations (adversarial
    minus clean, same shapes), the trace and the model's output on the adversarial inputs."""

    waveform: torch.Tensor
    frames: torch.Tensor
    delta_waveform: torch.Tensor
    delta_frames: torch.Tensor
    trace: AttackTrace
    output: AVOutput | torch.Tensor


def logits_of(output: AVOutput | EnsembleOutput | torch.Tensor) -> torch.Tensor:
    """Attacks accept any model returning an `AVOutput`, an `EnsembleOutput` (mean logits) or a
    bare logits tensor `(B, K)`."""
    return output if isinstance(output, torch.Tensor) else output.logits


def budget_tensor(value: Budget, modality: str, name: str) -> torch.Tensor:
    """A budget as a tensor broadcastable to its modality: `()` or, per RGB channel, `(1, 1, 3, 1, 1)`."""
    tensor = torch.as_tensor(value, dtype=torch.float32)
    if tensor.dim() == 1 and modality == "visual" and tensor.numel() == 3:
        tensor = tensor.view(1, 1, 3, 1, 1)
    elif tensor.dim() != 0:
        raise ValueError(f"{name} must be a number" + (" or 3 numbers (R, G, B)" if modality == "visual" else ""))
    if not torch.isfinite(tensor).all() or (tensor < 0).any() or (tensor > 1).any():
        raise ValueError(f"{name} must be between 0 and 1 ({UNITS[modality]}), got {value}")
    return tensor


class Attack:
    """An L-inf attack on both modalities with separate budgets, run in the model's eval mode.

    The base class is a single step of size eps (FGSM); iterative attacks add steps. Call it
    as `attack(waveform, frames, labels)` with waveform `(B, L)` in [-1, 1], frames
    `(B, T, 3, H, W)` in [0, 1] and labels `(B,)` (target classes in targeted mode). The
    optional `extra_loss(output, labels) -> (B,)` is added to the objective, so a defense's
    own training term can be attacked adaptively.

    Subclasses change where the gradient is taken (`gradients`, `inputs_at`), how it becomes a step
    (`direction`), where the search starts (`start`), and list the settings they read (`uses`).
    """

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()  # other names `create_attack` accepts (e.g. "mi-fgsm")
    rank: ClassVar[int] = 0  # menus list attacks by rank, roughly weakest first
    uses: ClassVar[tuple[str, ...]] = ("eps_audio", "eps_visual", "targeted")

    def __init__(self, model: nn.Module, settings: AttackSettings | None = None, extra_loss: ExtraLoss | None = None):
        settings = settings or AttackSettings()
        self.model = model
        self.settings = settings
        self.targeted = settings.targeted
        self.extra_loss = extra_loss
        self.eps = {
            "audio": budget_tensor(settings.eps_audio, "audio", "eps_audio"),
            "visual": budget_tensor(settings.eps_visual, "visual", "eps_visual"),
        }
        self.steps = 1
        self.step_size = dict(self.eps)
        self.passes = 0  # forward + backward passes of one clip so far (transformed copies count)

    @property
    def attacked(self) -> tuple[str, ...]:
        """The modalities with a non-zero budget."""
        return tuple(m for m in MODALITIES if bool((self.eps[m] > 0).any()))

    def reset(self) -> None:
        """Clear per-call state (momentum, random generator, ...) before a new batch."""

    def keep(self, standing: torch.Tensor) -> None:
        """Keep the per-clip state of the clips still attacked (`standing`, a `(B,)` mask) only:
        a subclass with state per clip (momentum) slices it."""

    def start(self, clean: torch.Tensor, modality: str) -> torch.Tensor:
        """Where the search starts: the clean input itself, unless a subclass says otherwise."""
        return clean

    def direction(self, modality: str, grad: torch.Tensor) -> torch.Tensor:
        """The ascent direction for one modality's gradient; L-inf steepest ascent by default."""
        return grad.sign()

    def objective(self, output: AVOutput | torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-sample objective `(B,)` that the attack maximises."""
        loss = F.cross_entropy(logits_of(output), labels, reduction="none")
        if self.targeted:
            loss = -loss
        if self.extra_loss is not None:
            loss = loss + self.extra_loss(output, labels)
        return loss

    def judged(self, output: AVOutput | EnsembleOutput | torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The objective `(B,)` of an output; of an ensemble's, the mean of its members' objectives."""
        if isinstance(output, EnsembleOutput):
            return torch.stack([self.objective(member, labels) for member in output.members]).mean(dim=0)
        return self.objective(output, labels)

    def inputs_at(self, point: dict[str, torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The inputs (waveform, frames) whose objectives are summed into the step's gradient, each
        a differentiable function of `point`; the first is the point itself, whose objective and
        output the trace records. Attacks that average over transformed copies or along a path
        (TIA, PAM, MIG) yield more; they are made one at a time, so memory stays that of one."""
        yield point["audio"], point["visual"]

    def gradients(self, point: dict[str, torch.Tensor], labels: torch.Tensor
                  ) -> tuple[torch.Tensor, AVOutput | torch.Tensor, dict[str, torch.Tensor]]:
        """The objective `(B,)` and the model's output at `point` ({"audio", "visual"}), and the
        gradient for each attacked modality (same shapes as the inputs) of the objective summed
        over `inputs_at(point)`. A modality the loss does not depend on gets a zero gradient."""
        attacked = self.attacked
        leaves = {m: t.detach().requires_grad_(m in attacked) for m, t in point.items()}
        wanted = [leaves[m] for m in attacked]
        total = {m: torch.zeros_like(leaves[m]) for m in attacked}
        first = None
        for audio, visual in self.inputs_at(leaves):
            self.passes += len(labels)
            output = self.model(audio, visual)
            loss = self.judged(output, labels)
            if first is None:
                first = (loss.detach(), output)
            if wanted and loss.requires_grad:  # else nothing is attacked, or no attacked input counts
                grads = torch.autograd.grad(loss.sum(), wanted, allow_unused=True)
                for m, g in zip(attacked, grads):
                    if g is not None:
                        total[m] += g
        return first[0], first[1], total

    def project(self, adv: torch.Tensor, clean: torch.Tensor, modality: str) -> torch.Tensor:
        """Onto the eps-ball around the clean input, then onto the valid range."""
        eps = self.eps[modality].to(clean.device, clean.dtype)
        delta = torch.maximum(torch.minimum(adv - clean, eps), -eps)
        low, high = VALID_RANGE[modality]
        return torch.clamp(clean + delta, low, high)

    def __call__(self, waveform: torch.Tensor, frames: torch.Tensor, labels: torch.Tensor,
                 on_step: Callable[[int, int], None] | None = None, stop_when_fooled: bool = False) -> AttackResult:
        """Attack a batch. `on_step(done, total)` is called after each step, for progress bars
        and time caps (it may raise to stop the attack). `stop_when_fooled`: keep each clip's
        first iterate the model gets wrong (targeted: gets to the target) and attack only the
        others from then on, down to none: a robust-accuracy count loses nothing (a clip wrong
        at any iterate is broken) and pays only for the clips still standing; the trace then
        holds only the final input."""
        clean = {"audio": waveform.detach(), "visual": frames.detach()}
        for modality, tensor in clean.items():
            low, high = VALID_RANGE[modality]
            if tensor.numel() and (tensor.min() < low or tensor.max() > high):
                raise ValueError(f"{modality} input must lie in [{low}, {high}]")
        attacked = self.attacked
        self.reset()
        adv = {m: self.start(clean[m], m) if m in attacked else clean[m] for m in MODALITIES}
        active = torch.arange(len(labels), device=labels.device)  # the clips still attacked

        records: list[StepRecord] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for done in range(1, self.steps + 1):
                point = {m: t[active] for m, t in adv.items()} if stop_when_fooled else adv
                with torch.enable_grad():  # a caller under no_grad would otherwise get zero gradients: no attack
                    loss, output, grads = self.gradients(point, labels[active])
                with torch.no_grad():
                    if stop_when_fooled:
                        predicted = logits_of(output).argmax(-1)
                        standing = predicted != labels[active] if self.targeted else predicted == labels[active]
                    else:
                        records.append(StepRecord.of(loss, output))
                    for modality, grad in grads.items():
                        step = self.step_size[modality].to(grad.device, grad.dtype)
                        moved = point[modality] + step * self.direction(modality, grad)
                        moved = self.project(moved, clean[modality][active] if stop_when_fooled else clean[modality],
                                             modality)
                        if stop_when_fooled:
                            adv[modality] = adv[modality].index_put((active[standing],), moved[standing])
                        else:
                            adv[modality] = moved
                if stop_when_fooled:
                    self.keep(standing)
                    active = active[standing]
                if on_step is not None:
                    on_step(done, self.steps)
                if not len(active):
                    break
            with torch.no_grad():
                adv = {m: t.detach() for m, t in adv.items()}
                output = self.model(adv["audio"], adv["visual"])
                records.append(StepRecord.of(self.judged(output, labels), output))
        finally:
            self.model.train(was_training)

        return AttackResult(
            waveform=adv["audio"],
            frames=adv["visual"],
            delta_waveform=adv["audio"] - clean["audio"],
            delta_frames=adv["visual"] - clean["visual"],
            trace=_trace(records, labels),
            output=output,
        )


@dataclass
class StepRecord:
    """What the trace keeps of one step: the objective, logits and feature statistics `(B, ...)`."""

    loss: torch.Tensor
    logits: torch.Tensor
    temporal_variance: torch.Tensor
    modality_cosine: torch.Tensor

    @classmethod
    def of(cls, loss: torch.Tensor, output: AVOutput | EnsembleOutput | torch.Tensor) -> StepRecord:
        """An ensemble's feature statistics are its members' mean (over those that have them)."""
        with torch.no_grad():
            logits = logits_of(output).detach()
            members = output.members if isinstance(output, EnsembleOutput) else [output]
            stats = torch.stack([_feature_stats(member, len(logits), logits.device) for member in members])
            variance, cosine = stats.nanmean(dim=0)
        return cls(loss.detach(), logits, variance, cosine)


def _feature_stats(output: AVOutput | torch.Tensor, batch: int, device) -> torch.Tensor:
    """(temporal variance, audio-visual cosine) `(2, B)`, NaN where the model lacks the features."""
    stats = torch.full((2, batch), float("nan"), device=device)
    if isinstance(output, AVOutput):
        if output.audio_segments is not None or output.visual_frames is not None:
            stats[0] = temporal_variance(output).float()
        if has_both_features(output):
            stats[1] = modality_cosine(output).float()
    return stats


def _trace(records: list[StepRecord], labels: torch.Tensor) -> AttackTrace:
    probabilities = torch.stack([torch.softmax(record.logits, dim=-1) for record in records])
    confidence, predicted = probabilities.max(dim=-1)
    index = labels.view(1, -1, 1).expand(len(records), -1, 1)
    return AttackTrace(
        loss=torch.stack([record.loss for record in records]),
        predicted=predicted,
        confidence=confidence,
        label_probability=probabilities.gather(-1, index).squeeze(-1),
        temporal_variance=torch.stack([record.temporal_variance for record in records]),
        modality_cosine=torch.stack([record.modality_cosine for record in records]),
    )
