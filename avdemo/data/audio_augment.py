"""Audio augmentation toward real recordings.

A teacher's upload was recorded in a room, through a phone or laptop microphone, often a
single short sound in silence. The bank's recordings and soundfont notes are clean and close,
so a model trained on them alone memorises their timbre. Training clips therefore pass through
a random chain of what a real recording adds: room reverberation, a microphone's uneven
equalisation, a band limit, a hiss or hum floor. Each step is drawn from the clip's own
random generator, so a clip stays a deterministic function of its seed.
"""

from __future__ import annotations

import numpy as np

from .. import SAMPLE_RATE

REVERB_PROBABILITY = 0.5
EQ_PROBABILITY = 0.5
BAND_LIMIT_PROBABILITY = 0.35
NOISE_FLOOR_PROBABILITY = 0.3


def _spectrum_filter(samples: np.ndarray, gains, sample_rate: int) -> np.ndarray:
    """Multiply the rfft of `samples` (zero-padded to a power of two) by `gains(frequencies in Hz)`."""
    size = 1 << (len(samples) - 1).bit_length()
    frequencies = np.fft.rfftfreq(size, 1 / sample_rate)
    return np.fft.irfft(np.fft.rfft(samples, size) * gains(frequencies), n=size)[: len(samples)].astype(np.float32)


def reverberate(samples: np.ndarray, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A small room: the dry sound plus exponentially decaying noise (RT60 0.15-0.9 s) convolved in."""
    rt60 = rng.uniform(0.15, 0.9)
    length = int(rt60 * sample_rate)
    times = np.arange(length) / sample_rate
    response = rng.standard_normal(length) * np.exp(-6.9 * times / rt60)
    response /= max(float(np.linalg.norm(response)), 1e-9)
    size = 1 << (len(samples) + length - 1).bit_length()  # a power of two: the FFT's fast sizes
    wet = np.fft.irfft(np.fft.rfft(samples, size) * np.fft.rfft(response, size), n=size)[: len(samples)]
    mix = rng.uniform(0.15, 0.6)
    return ((1 - mix) * samples + mix * wet * np.linalg.norm(samples) / max(float(np.linalg.norm(wet)), 1e-9)).astype(np.float32)


def equalise(samples: np.ndarray, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A smooth random gain curve over log frequency: 6 control points within +-9 dB."""
    controls = np.log(np.geomspace(60, sample_rate / 2, 6))
    decibels = rng.uniform(-9, 9, len(controls))
    return _spectrum_filter(samples, lambda f: 10 ** (np.interp(np.log(np.maximum(f, 1.0)), controls, decibels) / 20), sample_rate)


def band_limit(samples: np.ndarray, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A small loudspeaker or phone: a high-pass at 150-600 Hz and/or a low-pass at 1.5-4.5 kHz,
    each with a gentle (half an octave) slope."""
    kind = rng.integers(3)  # 0 high-pass, 1 low-pass, 2 both
    low = np.log2(rng.uniform(150, 600)) if kind in (0, 2) else -np.inf
    high = np.log2(rng.uniform(1500, 4500)) if kind in (1, 2) else np.inf

    def gains(frequencies):
        octaves = np.log2(np.maximum(frequencies, 1.0))
        return np.clip((octaves - low) / 0.5 + 1, 0, 1) * np.clip((high - octaves) / 0.5 + 1, 0, 1)

    return _spectrum_filter(samples, gains, sample_rate)


def noise_floor(samples: np.ndarray, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Microphone hiss (white or pink) or mains hum at 15-35 dB below the signal."""
    length = len(samples)
    if rng.random() < 0.3:
        times = np.arange(length) / sample_rate
        base = rng.choice([50.0, 60.0])
        floor = sum(np.sin(2 * np.pi * base * k * times + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
    else:
        floor = rng.standard_normal(length)
        if rng.random() < 0.5:  # pink: 1/f power
            floor = _spectrum_filter(floor, lambda f: 1 / np.sqrt(np.maximum(f, 20.0)), sample_rate)
    level = np.linalg.norm(samples) / 10 ** (rng.uniform(15, 35) / 20)
    return (samples + floor * level / max(float(np.linalg.norm(floor)), 1e-9)).astype(np.float32)


def toward_real(samples: np.ndarray, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """`(n,)` float32 -> `(n,)` float32 with the same peak: a random chain of reverberation,
    equalisation, band limit and noise floor (each applied with its own probability)."""
    peak = float(np.abs(samples).max())
    out = samples.astype(np.float32)
    for probability, step in ((REVERB_PROBABILITY, reverberate), (EQ_PROBABILITY, equalise),
                              (BAND_LIMIT_PROBABILITY, band_limit), (NOISE_FLOOR_PROBABILITY, noise_floor)):
        if rng.random() < probability:
            out = step(out, rng, sample_rate)
    return out * (peak / max(float(np.abs(out).max()), 1e-9))
