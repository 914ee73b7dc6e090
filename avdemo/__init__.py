"""avdemo: an interactive lab for the adversarial robustness of audio-visual models.

Data flows one way: file -> decoded clip (`avdemo.media`) -> model inputs -> attack
(`avdemo.attacks`) -> model outputs (`avdemo.models`) -> views (`avdemo.lab.ui`).

Conventions shared by every module:
- waveform: `(B, L)` float in [-1, 1] at 11025 Hz, L = 65535 (about 5.94 s) by default;
- frames: `(B, T, 3, H, W)` float in [0, 1], RGB pixel space (ImageNet normalisation
  happens inside the models), H = W = 224 by default.
"""

SAMPLE_RATE = 11025
NUM_SAMPLES = 65535
FRAME_SIZE = 224

__version__ = "0.1.0"
