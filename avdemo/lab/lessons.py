"""Guided lessons: one short step per shipped example, the settings it needs (applied to the
page's controls in one click) and the claim it teaches, as a check on the runs it sets up.

The claims are statements about the shipped models on these clips, so `tests/test_lessons.py`
runs every lesson and checks its claim; a retrained zoo that breaks one fails the test and
the lesson must be rewritten, not the check loosened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .analysis import NO_DEFENSE, SAME_MODEL, Analysis

DEFAULT_MODEL = "av-attention"  # the localization model: the page's first choice
DEFAULT_CONTROLS = {"model": DEFAULT_MODEL, "defense": NO_DEFENSE, "attack": "pgd", "modality": "both", "eps_audio": 0.006,
                    "eps_visual": 2.0, "steps": 10, "compare": False, "model_b": DEFAULT_MODEL, "defense_b": NO_DEFENSE,
                    "modality_b": "both", "paper": False, "craft_on": SAME_MODEL}


def predicted(analysis: Analysis, attacked: bool = True) -> str:
    probabilities = analysis.attacked_probabilities if attacked else analysis.clean_probabilities
    return analysis.classes[int(probabilities.argmax())]


def on_source(analysis: Analysis, attacked: bool = True) -> int:
    """Segments whose map peaks on the sounding object."""
    return sum(v["hit"] for v in analysis.localization_verdicts(analysis.attacked_maps if attacked else analysis.clean_maps))


def on_silent(analysis: Analysis, label: str, attacked: bool = True) -> int:
    """Segments whose map peaks on the silent `label`."""
    verdicts = analysis.localization_verdicts(analysis.attacked_maps if attacked else analysis.clean_maps)
    return sum(v["on"] == label for v in verdicts)


def pixels_untouched(analysis: Analysis) -> bool:
    return not np.any(analysis.delta_frames)


def sound_untouched(analysis: Analysis) -> bool:
    return not np.any(analysis.delta_waveform)


@dataclass(frozen=True)
class Lesson:
    """`step`: what to do and what to watch; `claim`: the checkable sentence behind it, and
    `holds(a, b)` checks it on the run of configuration A (and B in compare mode)."""

    example: str
    step: str
    claim: str
    holds: Callable[[Analysis, Analysis | None], bool]
    settings: dict = field(default_factory=dict)

    def controls(self) -> dict:
        """Every control the lesson sets, the page's defaults where it says nothing (B copies A)."""
        return {**DEFAULT_CONTROLS, "model_b": self.settings.get("model", DEFAULT_MODEL),
                "modality_b": self.settings.get("modality", "both"), **self.settings}


LESSONS = (
    Lesson("violin-solo",
           "Attack the **sound only** (ε_a = 0.01) and press Run: the class leaves the violin although no pixel changed.",
           "an audio-only attack changes av-attention's class with the frames bit-identical",
           lambda a, b: predicted(a) != "violin" and pixels_untouched(a),
           {"modality": "audio", "eps_audio": 0.01}),
    Lesson("dog-solo",
           "Compare the **visual-only** model (A) with **av-attention** (B), both attacked on the frames at 2/255: "
           "the picture alone is fooled, the sound keeps B on the dog.",
           "a 2/255 frame attack fools visual-only but not av-attention",
           lambda a, b: predicted(a) != "dog" and predicted(b) == "dog",
           {"model": "visual-only", "modality": "visual", "compare": True, "model_b": DEFAULT_MODEL, "modality_b": "visual"}),
    Lesson("trumpet-solo",
           "Run at the **visible budget** (ε_a = 0.01, 4/255): some clips resist; the trumpet is still named. "
           "Raise the steps or ε to break it.",
           "PGD-10 at 0.01 and 4/255 leaves av-attention's prediction on the trumpet",
           lambda a, b: predicted(a) == "trumpet",
           {"eps_audio": 0.01, "eps_visual": 4.0}),
    Lesson("cello-beside-violin",
           "Press Run: the class breaks but the map stays on the cello: **class and map can fail separately**.",
           "the default attack changes the class while the map stays on the cello in as many segments as clean",
           lambda a, b: predicted(a) != "cello" and on_source(a) >= on_source(a, attacked=False) > 0),
    Lesson("violin-beside-cello",
           "Attack the **frames only** at 2/255: the map jumps onto the silent cello, and the sound was not touched.",
           "a 2/255 frame attack moves the map onto the silent cello in at least 3 of 4 segments, the sound unchanged",
           lambda a, b: on_silent(a, "cello") >= 3 and sound_untouched(a),
           {"modality": "visual"}),
    Lesson("duck-beside-rooster",
           "Compare an attack on the **sound only** (A, ε_a = 0.01) with one on the **frames only** (B, 2/255): "
           "on this clip the sound moves the map onto the silent rooster without changing a pixel, and these pixels do "
           "not move it. This clip is the exception: across 30 test clips, audio at SNR ≥ 30 dB moves the map onto a "
           "silent object in 4, 4/255 on the frames in 22 (the Robustness tab, attacks on the map).",
           "the audio-only attack puts the map on the silent rooster in at least 3 of 4 segments with the frames "
           "bit-identical, while the frame-only attack keeps it on the duck in at least 3",
           lambda a, b: on_silent(a, "rooster") >= 3 and pixels_untouched(a) and on_source(b) >= 3,
           {"modality": "audio", "eps_audio": 0.01, "compare": True, "modality_b": "visual"}),
    Lesson("dog-and-sheep",
           "Look at the **clean** row: the map sits on the silent sheep before any attack, while the class (dog) is right. "
           "A right class does not mean the model looks at the right thing.",
           "clean, av-attention names the dog and its map peaks on the silent sheep in at least 3 of 4 segments",
           lambda a, b: predicted(a, attacked=False) == "dog" and on_silent(a, "sheep", attacked=False) >= 3),
    Lesson("trumpet-beside-tuba",
           "Compare **av-concat** without (A) and with the **MinSim** defense (B): both keep the trumpet, and on this "
           "clip only the defended map finds it under attack. One clip: the Robustness tab has the numbers over many.",
           "under the default attack both name the trumpet, and MinSim's map is on it in more segments than av-concat's",
           lambda a, b: predicted(a) == predicted(b) == "trumpet" and on_source(b) > on_source(a),
           {"model": "av-concat", "compare": True, "model_b": "av-concat", "defense_b": "minsim"}),
    Lesson("small-loud-owl",
           "Press Run and read the **clean** prediction: the small owl is missed even before the attack, and the map "
           "never finds it: small objects are this model's blind spot.",
           "clean, av-attention does not name the owl and its map is on the owl in no segment",
           lambda a, b: predicted(a, attacked=False) != "owl" and on_source(a, attacked=False) == 0),
    Lesson("flute-in-heavy-noise",
           "Under heavy noise, attack the **sound only** (ε_a = 0.01): the model names the silent clarinet beside the flute.",
           "the audio-only attack makes av-attention predict the clarinet, which stands silent in the frame",
           lambda a, b: predicted(a) == "clarinet" and pixels_untouched(a),
           {"modality": "audio", "eps_audio": 0.01}),
    Lesson("pig-in-heavy-noise",
           "Press Run: noise does not make every clip fragile; the pig is still named and the map stays on it.",
           "the default attack leaves av-attention on the pig, with the map on it in every segment",
           lambda a, b: predicted(a) == "pig" and on_source(a) == len(a.attacked_maps)),
    Lesson("xylophone-heldout",
           "Press Run: a sprite, sound and soundfont never seen in training, yet the map finds the xylophone "
           "and the default attack does not move it.",
           "on held-out material av-attention names the xylophone and its map is on it in every segment, clean and attacked",
           lambda a, b: predicted(a) == "xylophone" and on_source(a, attacked=False) == on_source(a) == len(a.clean_maps)),
)


def lesson_for(example: str) -> Lesson | None:
    return next((lesson for lesson in LESSONS if lesson.example == example), None)
