"""Temporal masking: hide a share of a clip's time in its audio, its frames or both.

The corruption of the ICLR 2025 temporal/modality paper (§3, Figure 1), shared by the
evaluation (`avdemo.evaluation.masking`), the app's masking control and attacks that use
masking as an input transformation.

The clip's duration is cut into `units` equal windows; `round(share * units)` of them are
masked (halves round up), drawn at random without replacement:

- **audio**: the samples of a masked window are set to 0 (silence). Window k holds samples
  `[round(k L / units), round((k + 1) L / units))`, so the windows tile the waveform.
- **frames**: frame t of T sits at time `(t + 0.5) / T` of the clip (where `avdemo.media` and
  `avdemo.data.synth` put it); it is masked when that time falls in a masked window, i.e. in
  window `floor((t + 0.5) units / T)`. A masked frame is replaced by a constant **fill**, by
  default the ImageNet mean colour (0.485, 0.456, 0.406): the models normalise frames with the
  ImageNet mean and std, so this frame is exactly 0 at the network's input, the visual
  analogue of silence (no signal), where a black frame would be a strong dark image of its own
  (about -2 in normalised units). With T = units (e.g. 20 frames, 20 windows) each window is
  one frame and the visual share is exactly the audio share; with T < units, whether a frame
  is masked depends on which windows are drawn (on average the share, since each frame's window
  is masked with chance k / units).
- **modality** "audio" or "visual" masks that one and leaves the other bit-identical; "both"
  masks the same windows in both modalities when `synchronous`, and disjoint windows when not
  (audio and frames are then never hidden at the same moment). Disjoint windows need
  2k <= units; beyond that (share > 1/2) the visual windows take every window the audio leaves
  free plus the fewest audio windows needed (2k - units of them, drawn at random), so the
  overlap is as small as it can be and share = 1 masks everything, as synchronous does.

Every draw is made per clip from one random permutation of the windows: the audio (or the
only) modality takes its first k windows, the visual modality of an asynchronous draw the
next k. So the same generator state gives the same windows in every mode (the asynchronous
audio windows are the synchronous ones), which makes paired comparisons between modes fair.
Draws are reproducible: pass a `torch.Generator` or an int seed (None uses torch's global RNG).

Masking is a multiplication by a 0/1 mask (plus the fill where frames are masked), so it is
differentiable w.r.t. its inputs: the gradient is passed through where nothing is masked and
is 0 where something is, and attacks can average gradients over masked copies.

    waveform, frames = temporal_mask(waveform, frames, 0.2, "both", synchronous=False, generator=0)
    mask = draw_mask(len(waveform), 0.2, "both", synchronous=False, generator=0)   # the same draw
    mask.sample_mask(waveform.shape[1]), mask.frame_mask(frames.shape[1])   # what was masked, for a view
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch

MODALITIES = ("audio", "visual", "both")
UNITS = 20
"""Default number of windows: a 5 % step of share is one window."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""The default fill of a masked frame (equal to `avdemo.models.visual_net.IMAGENET_MEAN`): 0 after
the models' normalisation."""
MODES = {"visual": ("visual", True), "audio": ("audio", True), "both-sync": ("both", True), "both-async": ("both", False)}
"""The four groups of the paper's Figure 1 by name -> (modality, synchronous): V✗, A✗, A✗⊙V✗, A✗⊕V✗."""


def masked_count(share: float, units: int = UNITS) -> int:
    """How many of `units` windows a share in [0, 1] masks: the nearest whole number, halves up."""
    share = check_share(share)
    return min(units, int(math.floor(share * _check_units(units) + 0.5 + 1e-9)))


def check_share(share) -> float:
    """A share as a float in [0, 1]; a clear ValueError for anything else (NaN, bool, < 0, > 1)."""
    if isinstance(share, torch.Tensor) and share.numel() == 1:
        share = share.item()
    if isinstance(share, bool) or not isinstance(share, numbers.Real) or math.isnan(share):
        raise ValueError(f"share must be a number in [0, 1] (the fraction of the clip to mask), got {share!r}")
    if not 0 <= share <= 1:
        raise ValueError(f"share must lie in [0, 1] (the fraction of the clip to mask), got {share}"
                         + (" (a percentage? pass 0.2 for 20 %)" if 1 < share <= 100 else ""))
    return float(share)


def check_modality(modality: str) -> str:
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; choose one of {', '.join(MODALITIES)}")
    return modality


def _check_units(units: int) -> int:
    if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units < 1:
        raise ValueError(f"units must be a whole number of windows >= 1, got {units!r}")
    return int(units)


def window_bounds(num_samples: int, units: int = UNITS) -> list[tuple[int, int]]:
    """Sample range `[start, end)` of each of `units` equal windows tiling `num_samples` samples."""
    units = _check_units(units)
    return [(round(k * num_samples / units), round((k + 1) * num_samples / units)) for k in range(units)]


def frame_windows(steps: int, units: int = UNITS) -> torch.Tensor:
    """The window `(T,)` long in which each of T evenly spaced frames (frame t at time
    (t + 0.5) / T of the clip) falls: `floor((t + 0.5) units / T)`."""
    units = _check_units(units)
    if steps < 1:
        raise ValueError(f"the number of frames must be at least 1, got {steps}")
    return torch.tensor([min(units - 1, (2 * t + 1) * units // (2 * steps)) for t in range(steps)])


@dataclass(frozen=True)
class TemporalMask:
    """Which windows are masked, per clip: `audio` and `visual` bool `(B, units)`. What that
    means in samples and frames depends only on the clip's length and frame count."""

    audio: torch.Tensor
    visual: torch.Tensor

    @property
    def units(self) -> int:
        return self.audio.shape[1]

    def sample_mask(self, num_samples: int) -> torch.Tensor:
        """Bool `(B, L)`: True where a sample of the waveform is masked (set to silence)."""
        index = torch.zeros(num_samples, dtype=torch.long)
        for k, (start, end) in enumerate(window_bounds(num_samples, self.units)):
            index[start:end] = k
        return self.audio[:, index.to(self.audio.device)]

    def frame_mask(self, steps: int) -> torch.Tensor:
        """Bool `(B, T)`: True where a frame is masked (replaced by the fill)."""
        return self.visual[:, frame_windows(steps, self.units).to(self.visual.device)]

    def spans(self, duration: float = 1.0) -> list[dict[str, list[tuple[float, float]]]]:
        """Per clip, the masked stretches of each modality as (start, end) times, `duration`
        being the clip's length (1.0: fractions of the clip), adjacent windows merged; for a
        timeline view. Frames follow the visual windows (see `frame_mask`)."""
        edges = [k * duration / self.units for k in range(self.units + 1)]
        result = []
        for audio, visual in zip(self.audio.tolist(), self.visual.tolist()):
            clip = {}
            for name, masked in (("audio", audio), ("visual", visual)):
                runs: list[tuple[float, float]] = []
                for k, hidden in enumerate(masked):
                    if hidden and runs and runs[-1][1] == edges[k]:
                        runs[-1] = (runs[-1][0], edges[k + 1])
                    elif hidden:
                        runs.append((edges[k], edges[k + 1]))
                clip[name] = runs
            result.append(clip)
        return result


def _generator(generator: torch.Generator | int | None) -> torch.Generator | None:
    if isinstance(generator, bool):
        raise ValueError("generator must be a torch.Generator, an int seed or None")
    if isinstance(generator, numbers.Integral):
        seeded = torch.Generator()
        seeded.manual_seed(int(generator))
        return seeded
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, an int seed or None, got {type(generator).__name__}")
    return generator


def draw_mask(batch: int, share: float, modality: str, synchronous: bool = True, units: int = UNITS,
              generator: torch.Generator | int | None = None, device: torch.device | str = "cpu") -> TemporalMask:
    """Draw which windows to mask for `batch` clips (see the module docstring): k =
    `masked_count(share, units)` windows per masked modality, the same ones in both modalities
    when `synchronous`, disjoint ones (as far as possible) when not. A permutation is drawn
    per clip even when k = 0, so a generator advances the same way at every share."""
    share, modality, units = check_share(share), check_modality(modality), _check_units(units)
    if batch < 0:
        raise ValueError(f"batch must be >= 0, got {batch}")
    count, generator = masked_count(share, units), _generator(generator)
    audio = torch.zeros(batch, units, dtype=torch.bool)
    visual = torch.zeros(batch, units, dtype=torch.bool)
    for clip in range(batch):
        order = torch.randperm(units, generator=generator)
        if modality in ("audio", "both"):
            audio[clip, order[:count]] = True
        if modality == "visual" or (modality == "both" and synchronous):
            visual[clip, order[:count]] = True
        elif modality == "both":
            free = order[count:]
            visual[clip, free[:count]] = True
            shared = count - len(free)  # > 0 only when 2k > units: the fewest audio windows needed, at random
            if shared > 0:
                visual[clip, order[:count][torch.randperm(count, generator=generator)[:shared]]] = True
    return TemporalMask(audio.to(device), visual.to(device))


def _check_inputs(waveform: torch.Tensor, frames: torch.Tensor) -> None:
    if waveform.dim() != 2:
        raise ValueError(f"waveform must be (B, L), got shape {tuple(waveform.shape)}")
    if frames.dim() != 5 or frames.shape[2] != 3:
        raise ValueError(f"frames must be (B, T, 3, H, W), got shape {tuple(frames.shape)}")
    if waveform.shape[0] != frames.shape[0]:
        raise ValueError(f"waveform and frames hold different numbers of clips ({waveform.shape[0]} and {frames.shape[0]})")


def _fill_tensor(fill: float | Sequence[float] | torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """The fill as a tensor broadcastable to one frame `(3, 1, 1)` (or `(3, H, W)`)."""
    value = torch.as_tensor(fill, dtype=frames.dtype, device=frames.device)
    if value.dim() == 1:
        if value.numel() != 3:
            raise ValueError(f"a fill colour needs 3 values (R, G, B), got {value.numel()}")
        value = value.view(3, 1, 1)
    if value.dim() not in (0, 3) or (value.dim() == 3 and value.shape[0] != 3):
        raise ValueError(f"fill must be a number, an RGB triple or a (3, H, W) frame, got shape {tuple(value.shape)}")
    if ((value < 0) | (value > 1)).any():
        raise ValueError("fill must lie in [0, 1], the frames' pixel range")
    return value


def apply_mask(waveform: torch.Tensor, frames: torch.Tensor, mask: TemporalMask,
               fill: float | Sequence[float] | torch.Tensor = IMAGENET_MEAN) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a drawn mask: waveform `(B, L)` in [-1, 1] and frames `(B, T, 3, H, W)` in [0, 1] ->
    new tensors of the same shapes and ranges, samples of masked audio windows 0 and masked
    frames the fill (a number, an RGB triple or a `(3, H, W)` frame in [0, 1]). Differentiable:
    `waveform * keep` and `frames * keep + fill * (1 - keep)`."""
    _check_inputs(waveform, frames)
    if mask.audio.shape[0] != waveform.shape[0]:
        raise ValueError(f"the mask is for {mask.audio.shape[0]} clips, the inputs hold {waveform.shape[0]}")
    silent = mask.sample_mask(waveform.shape[1]).to(waveform.device)
    hidden = mask.frame_mask(frames.shape[1]).to(frames.device)[:, :, None, None, None]
    keep_audio = (~silent).to(waveform.dtype)
    keep_frames = (~hidden).to(frames.dtype)
    return waveform * keep_audio, frames * keep_frames + _fill_tensor(fill, frames) * (1 - keep_frames)


def temporal_mask(waveform: torch.Tensor, frames: torch.Tensor, share: float, modality: str,
                  synchronous: bool = True, units: int = UNITS, generator: torch.Generator | int | None = None,
                  fill: float | Sequence[float] | torch.Tensor = IMAGENET_MEAN) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask a share in [0, 1] of each clip's time in "audio", "visual" or "both" modalities.

    waveform `(B, L)` float in [-1, 1]; frames `(B, T, 3, H, W)` float in [0, 1]; returns the
    masked (waveform, frames), same shapes, dtypes and ranges; the modality not masked is
    returned bit-identical. `units` equal windows, `round(share * units)` of them masked per
    clip (see the module docstring for frames, the fill and the asynchronous rule); `generator`
    a `torch.Generator` or an int seed for a reproducible draw. `draw_mask` with the same
    arguments gives the draw itself (which samples and frames were masked).
    """
    _check_inputs(waveform, frames)
    mask = draw_mask(waveform.shape[0], share, modality, synchronous, units, generator, waveform.device)
    return apply_mask(waveform, frames, mask, fill)
