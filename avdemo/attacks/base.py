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

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..models import AVOutput
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
    softmax probability, and the probability of the label (true class or target).
    """

    loss: torch.Tensor
    predicted: torch.Tensor
    confidence: torch.Tensor
    label_probability: torch.Tensor


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


def logits_of(output: AVOutput | torch.Tensor) -> torch.Tensor:
    """Attacks accept any model returning an `AVOutput` or a bare logits tensor `(B, K)`."""
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

    Subclasses change where the gradient is taken (`gradients`), how it becomes a step
    (`direction`), where the search starts (`start`), and list the settings they read (`uses`).
    """

    name: ClassVar[str]
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

    @property
    def attacked(self) -> tuple[str, ...]:
        """The modalities with a non-zero budget."""
        return tuple(m for m in MODALITIES if bool((self.eps[m] > 0).any()))

    def reset(self) -> None:
        """Clear per-call state (momentum, random generator, ...) before a new batch."""

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

    def gradients(self, point: dict[str, torch.Tensor], labels: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The objective `(B,)`, the logits `(B, K)` and the objective's gradient for each
        attacked modality (same shapes as the inputs), all at `point` ({"audio", "visual"}).
        A modality the loss does not depend on gets a zero gradient."""
        attacked = self.attacked
        inputs = {m: t.detach().requires_grad_(m in attacked) for m, t in point.items()}
        output = self.model(inputs["audio"], inputs["visual"])
        loss = self.objective(output, labels)
        wanted = [inputs[m] for m in attacked]
        if wanted and loss.requires_grad:
            grads = torch.autograd.grad(loss.sum(), wanted, allow_unused=True)
        else:  # nothing attacked, or the loss depends on no attacked input
            grads = [None] * len(wanted)
        return loss.detach(), logits_of(output).detach(), {
            m: torch.zeros_like(inputs[m]) if g is None else g for m, g in zip(attacked, grads)}

    def project(self, adv: torch.Tensor, clean: torch.Tensor, modality: str) -> torch.Tensor:
        """Onto the eps-ball around the clean input, then onto the valid range."""
        eps = self.eps[modality].to(clean.device, clean.dtype)
        delta = torch.maximum(torch.minimum(adv - clean, eps), -eps)
        low, high = VALID_RANGE[modality]
        return torch.clamp(clean + delta, low, high)

    def __call__(self, waveform: torch.Tensor, frames: torch.Tensor, labels: torch.Tensor,
                 on_step: Callable[[int, int], None] | None = None) -> AttackResult:
        """Attack a batch. `on_step(done, total)` is called after each step, for progress bars
        and time caps (it may raise to stop the attack)."""
        clean = {"audio": waveform.detach(), "visual": frames.detach()}
        for modality, tensor in clean.items():
            low, high = VALID_RANGE[modality]
            if tensor.numel() and (tensor.min() < low or tensor.max() > high):
                raise ValueError(f"{modality} input must lie in [{low}, {high}]")
        attacked = self.attacked
        self.reset()
        adv = {m: self.start(clean[m], m) if m in attacked else clean[m] for m in MODALITIES}

        records: list[tuple[torch.Tensor, torch.Tensor]] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for done in range(1, self.steps + 1):
                loss, logits, grads = self.gradients(adv, labels)
                records.append((loss, logits))
                with torch.no_grad():
                    for modality, grad in grads.items():
                        step = self.step_size[modality].to(grad.device, grad.dtype)
                        moved = adv[modality] + step * self.direction(modality, grad)
                        adv[modality] = self.project(moved, clean[modality], modality)
                if on_step is not None:
                    on_step(done, self.steps)
            with torch.no_grad():
                adv = {m: t.detach() for m, t in adv.items()}
                output = self.model(adv["audio"], adv["visual"])
                records.append((self.objective(output, labels), logits_of(output)))
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


def _trace(records: list[tuple[torch.Tensor, torch.Tensor]], labels: torch.Tensor) -> AttackTrace:
    losses = torch.stack([loss for loss, _ in records])
    probabilities = torch.stack([torch.softmax(logits, dim=-1) for _, logits in records])
    confidence, predicted = probabilities.max(dim=-1)
    index = labels.view(1, -1, 1).expand(len(records), -1, 1)
    return AttackTrace(
        loss=losses,
        predicted=predicted,
        confidence=confidence,
        label_probability=probabilities.gather(-1, index).squeeze(-1),
    )
