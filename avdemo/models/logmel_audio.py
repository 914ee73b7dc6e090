"""A log-mel CNN audio network: the second audio backbone (transfer across architectures).

Where `AudioNet` learns its own filters on the raw waveform with 1-D convolutions, this one
hears through a fixed time-frequency front end, as most audio classifiers do (VGGish, PANNs):
a short-time Fourier transform (46 ms Hann windows every 23 ms at 11025 Hz), a triangular mel
filterbank (64 bands up to the Nyquist frequency, the HTK mel scale), the log of the band
energies, a batch norm per band, then a 2-D convolutional network over (band, time): four
blocks of 3x3 convolution + batch norm + ReLU (two convolutions in blocks 2 and 3) with 2x2
max pools between blocks, the mean over bands and the maximum over time. At width 1 the
channels are 64-128-256-512 (2.3 M parameters); at width 1/4, 16-32-64-128 (0.14 M
parameters, against `AudioNet`'s 0.10 M).

The front end is plain differentiable torch (`torch.stft` and a filterbank buffer that is not
part of the state dict), so attacks get exact gradients with respect to the waveform, and the
contract is `AudioNet`'s: waveform `(B, L)` in [-1, 1] -> feature `(B, feature_dim)` >= 0, with
`min_samples` (`avdemo.models.segments` cuts a clip into windows of at least that many).
"""

from __future__ import annotations

import torch
from torch import nn

from .audio_net import scaled_channels

SAMPLE_RATE = 11025
N_FFT = 512
HOP = 256
N_MELS = 64
LOG_FLOOR = 1e-6  # added to the band energies (a full-scale sine's band is about 0.1): 60 dB of range
BASE_CHANNELS = (64, 128, 256, 512)
CONVS_PER_BLOCK = (1, 2, 2, 1)


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int = N_FFT // 2 + 1, n_mels: int = N_MELS, sample_rate: int = SAMPLE_RATE,
                   f_min: float = 0.0, f_max: float | None = None) -> torch.Tensor:
    """Triangular filters `(n_freqs, n_mels)` on the HTK mel scale, each with unit peak, spaced
    evenly in mel from `f_min` to `f_max` (the Nyquist frequency by default)."""
    f_max = sample_rate / 2 if f_max is None else f_max
    frequencies = torch.linspace(0, sample_rate / 2, n_freqs, dtype=torch.float64)
    edges = _mel_to_hz(torch.linspace(float(_hz_to_mel(torch.tensor(f_min))), float(_hz_to_mel(torch.tensor(f_max))),
                                      n_mels + 2, dtype=torch.float64))
    low, centre, high = edges[:-2], edges[1:-1], edges[2:]
    rising = (frequencies[:, None] - low) / (centre - low)
    falling = (high - frequencies[:, None]) / (high - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0).float()


class LogMel(nn.Module):
    """Waveform `(B, L)` -> log mel band energies `(B, n_mels, frames)`, frames = 1 + L // hop.

    The power spectrum is divided by the window's squared sum, so a full-scale sine has a power
    near 1/4 in its bin, whatever the window length; the log's floor `LOG_FLOOR` keeps silence
    (and the zero padding of edge segments) finite. Computed in float32 even under autocast.
    """

    def __init__(self, n_fft: int = N_FFT, hop: int = HOP, n_mels: int = N_MELS, sample_rate: int = SAMPLE_RATE):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("filterbank", mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        with torch.autocast(waveform.device.type, enabled=False):
            spectrum = torch.stft(waveform.float(), self.n_fft, self.hop, window=self.window, center=True,
                                  pad_mode="constant", return_complex=True)
            power = (spectrum.real ** 2 + spectrum.imag ** 2) / self.window.sum() ** 2  # (B, freqs, frames)
            bands = torch.einsum("bft,fm->bmt", power, self.filterbank)
            return torch.log(bands + LOG_FLOOR)


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True)]


class LogMelAudioNet(nn.Module):
    """Waveform `(B, L)` float in [-1, 1] at 11025 Hz -> audio feature `(B, feature_dim)`, >= 0.

    feature_dim = 512 x width (128 at width 1/4). L must be at least 4096 samples (17 STFT
    frames, 2 after the three time pools), as for `AudioNet`.
    """

    min_samples = 4096

    def __init__(self, width: float = 1.0):
        super().__init__()
        self.logmel = LogMel()
        self.norm = nn.BatchNorm1d(N_MELS)  # per band: the log energies' scale differs across bands
        layers: list[nn.Module] = []
        in_channels = 1
        channels = scaled_channels(width, BASE_CHANNELS)
        for index, (out_channels, convs) in enumerate(zip(channels, CONVS_PER_BLOCK)):
            if index:
                layers.append(nn.MaxPool2d(2))
            for _ in range(convs):
                layers += _conv_bn_relu(in_channels, out_channels)
                in_channels = out_channels
        self.net = nn.Sequential(*layers)
        self.feature_dim = in_channels
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def spectrogram(self, waveform: torch.Tensor) -> torch.Tensor:
        """The network's input: normalised log mel energies `(B, 1, n_mels, frames)`."""
        return self.norm(self.logmel(waveform)).unsqueeze(1)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() != 2:
            raise ValueError(f"waveform must be (B, L), got shape {tuple(waveform.shape)}")
        if waveform.shape[1] < self.min_samples:
            raise ValueError(f"waveform needs at least {self.min_samples} samples, got {waveform.shape[1]}")
        features = self.net(self.spectrogram(waveform))  # (B, C, bands, frames)
        return features.mean(dim=2).amax(dim=2)

