"""PAM, the path-augmented method (Zhang et al., CVPR 2023), a transfer baseline of the ICLR 2025
paper: MI-FGSM whose gradient is summed over the input and its augmentations along paths to
several baselines at several scales, x / 2^i + b (1 - 1/2^i), i = 1..`scales`, b one of `paths`
baselines (32 copies at the public code's 8 x 4).

Visual baselines: the eight flat colours of the public code (Trustworthy-AI-Group/TransferAttack),
black, grey, white, (.5, .5, 0), (1, 1, .5), (1, .5, 1), (.5, 1, 1), (0, .5, .5). Its semantic
predictor, which shrinks each path to keep the image's meaning, is a network trained per data set;
we use its untrained setting (every ratio 1), which the public code keeps as a comment.
Audio baselines (our choice; the paper has none): the flat signal of audio is silence, and a
constant other than 0 is a DC offset no listener hears, so the audio baselines are silence and
three stationary noises without content, white, pink (1/f) and brown (1/f^2) at an RMS of 0.05
(drawn once with a fixed seed); path j pairs visual baseline j with audio baseline j mod 4.
Only the attacked modalities travel along the paths: the victim hears and sees the other one as
it is, so the copies keep it so too.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import ExtraLoss
from .mim import MIM
from .registry import register_attack
from .settings import AttackSettings

VISUAL_BASELINES = ((0.0, 0.0, 0.0), (0.5, 0.5, 0.5), (1.0, 1.0, 1.0), (0.5, 0.5, 0.0),
                    (1.0, 1.0, 0.5), (1.0, 0.5, 1.0), (0.5, 1.0, 1.0), (0.0, 0.5, 0.5))
NOISE_EXPONENTS = (None, 0.0, 1.0, 2.0)  # silence, then power spectra 1/f^0 (white), 1/f, 1/f^2
NOISE_RMS = 0.05


def noise_baseline(exponent: float | None, length: int, generator: torch.Generator) -> torch.Tensor:
    """A waveform `(length,)`: silence (exponent None) or noise whose power falls as 1/f^exponent,
    at an RMS of `NOISE_RMS`."""
    if exponent is None:
        return torch.zeros(length)
    spectrum = torch.fft.rfft(torch.randn(length, generator=generator))
    frequency = torch.arange(len(spectrum), dtype=torch.float32).clamp_min(1.0)
    noise = torch.fft.irfft(spectrum * frequency ** (-exponent / 2), n=length)
    noise = noise - noise.mean()
    return noise * (NOISE_RMS / noise.pow(2).mean().sqrt().clamp_min(1e-12))


@register_attack
class PAM(MIM):
    name = "pam"
    rank = 46
    uses = (*MIM.uses, "paths", "scales")

    def __init__(self, model: nn.Module, settings: AttackSettings | None = None, extra_loss: ExtraLoss | None = None):
        super().__init__(model, settings, extra_loss)
        if self.settings.paths > len(VISUAL_BASELINES):
            raise ValueError(f"PAM has {len(VISUAL_BASELINES)} baselines: paths must be at most that, "
                             f"got {self.settings.paths}")

    def reset(self) -> None:
        super().reset()
        self.noises: list[torch.Tensor] | None = None  # the audio baselines, drawn at the first step of a call

    def inputs_at(self, point):
        audio, visual = point["audio"], point["visual"]
        yield audio, visual
        if self.noises is None:
            generator = torch.Generator().manual_seed(0)
            self.noises = [noise_baseline(e, audio.shape[1], generator).to(audio) for e in NOISE_EXPONENTS]
        noises, attacked = self.noises, self.attacked
        for path in range(self.settings.paths):
            colour = torch.tensor(VISUAL_BASELINES[path]).to(visual).view(1, 1, 3, 1, 1)
            noise = noises[path % len(noises)]
            for i in range(1, self.settings.scales + 1):
                keep = 2.0 ** -i
                yield ((audio * keep + noise * (1 - keep)).clamp(-1, 1) if "audio" in attacked else audio,
                       visual * keep + colour * (1 - keep) if "visual" in attacked else visual)
