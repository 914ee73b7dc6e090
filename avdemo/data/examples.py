"""The app's example videos: AV-Synth clips staged to teach, written to `assets/examples/`.

Each is a ~6 s H.264 + AAC mp4 (8 fps, the sounding object moving with its sound) with a
JSON sidecar holding its ground truth: the class, and per frame the sounding object's box
and the silent distractors' boxes and classes. `assets/ATTRIBUTION.md` lists every source
file the examples use, with its license.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import NUM_SAMPLES, SAMPLE_RATE
from ..media import write_mp4
from .bank import Bank
from .truth import write_sidecar
from .synth import Placement, SynthConfig, material_pool, plan_clip, render_clip, with_changes
from ..paths import EXAMPLES as EXAMPLES_DIR

FPS = 8


@dataclass(frozen=True)
class Scenario:
    """A staged clip: what sounds, what stands silently beside it, and how it is heard."""

    name: str
    lesson: str
    sounding: str
    distractors: tuple[str, ...] = ()
    scale: float = 0.5
    distractor_scale: float = 0.45
    snr_db: float = 25.0
    material: str = "test"  # "test": training material, never these clips; "test-heldout": held-out material
    seed: int = 0


SCENARIOS = (
    Scenario("violin-solo", "An easy clip: one violin, clearly heard.", "violin"),
    Scenario("dog-solo", "An easy clip: one dog barking.", "dog", seed=1),
    Scenario("trumpet-solo", "An easy clip: one trumpet playing.", "trumpet", seed=2),
    Scenario("cello-beside-violin", "The cello sounds; the violin beside it is a silent look-alike.", "cello", ("violin",)),
    Scenario("violin-beside-cello", "The same pair, but now the violin sounds: the map should move.", "violin", ("cello",)),
    Scenario("duck-beside-rooster", "A duck quacks beside a silent rooster.", "duck", ("rooster",), seed=3),
    Scenario("dog-and-sheep", "Two animals: the dog barks, the sheep is silent.", "dog", ("sheep",), seed=4),
    Scenario("trumpet-beside-tuba", "The trumpet plays; the tuba is a silent look-alike.", "trumpet", ("tuba",), seed=5),
    Scenario("small-loud-owl", "A small but loud owl beside two large silent animals.", "owl", ("cow", "horse"),
             scale=0.18, distractor_scale=0.5, seed=6),
    Scenario("flute-in-heavy-noise", "A flute under heavy noise (SNR -5 dB).", "flute", ("clarinet",), snr_db=-5.0, seed=7),
    Scenario("pig-in-heavy-noise", "A pig under heavy noise (SNR -5 dB).", "pig", snr_db=-5.0, seed=8),
    Scenario("xylophone-heldout", "Held-out material: a sprite, sound and soundfont never seen in training.", "xylophone",
             ("accordion",), material="test-heldout", seed=9),
)


def stage(bank: Bank, scenario: Scenario, config: SynthConfig) -> object:
    """A clip plan for a scenario: a generated plan with the sounding object, the distractors
    and the noise level replaced by the scenario's."""
    classes = bank.classes
    label = classes.index(scenario.sounding)
    base = plan_clip(bank, scenario.material, label + len(classes) * (1000 + scenario.seed), 0, config)
    role = "heldout" if scenario.material == "test-heldout" else "train"
    rng = np.random.default_rng(scenario.seed)
    slots = [(0.5, 0.55)] if not scenario.distractors else [(0.28, 0.55), (0.72, 0.55), (0.5, 0.3)]
    if scenario.scale < 0.3:
        slots = [(0.5, 0.8), (0.25, 0.45), (0.75, 0.45)]

    def place(name: str, scale: float, slot: tuple[float, float]) -> Placement:
        sprites = material_pool(bank.sprites, role, name)
        return Placement(classes.index(name), sprites[rng.integers(len(sprites))], scale, slot, bool(rng.random() < 0.5))

    source = place(scenario.sounding, scenario.scale, slots[0])
    distractors = [place(name, scenario.distractor_scale, slot) for name, slot in zip(scenario.distractors, slots[1:])]
    return with_changes(base, source=source, distractors=distractors, snr_db=scenario.snr_db, peak=0.7)


def write_examples(bank: Bank, out: Path = EXAMPLES_DIR, scenarios=SCENARIOS, size: int = 224) -> list[Path]:
    """Render every scenario to `<out>/<name>.mp4` + `<name>.json`; returns the mp4 paths."""
    out.mkdir(parents=True, exist_ok=True)
    frames = round(NUM_SAMPLES / SAMPLE_RATE * FPS)
    config = SynthConfig(frames=frames, size=size)
    written = []
    for scenario in scenarios:
        plan = stage(bank, scenario, config)
        clip = render_clip(bank, plan, config)
        path = write_mp4(out / f"{scenario.name}.mp4", clip.frames, clip.waveform, SAMPLE_RATE, fps=FPS)
        times = (np.arange(frames) + 0.5) * (NUM_SAMPLES / SAMPLE_RATE) / frames
        sidecar = {
            "name": scenario.name,
            "lesson": scenario.lesson,
            "label": bank.classes[clip.label],
            "label_index": int(clip.label),
            "classes": bank.classes,
            "frame_size": size,
            "fps": FPS,
            "frame_times": [round(float(t), 4) for t in times],
            "box": clip.box.round(1).tolist(),
            "distractors": [
                {"label": bank.classes[int(label)], "box": clip.distractor_box[:, slot].round(1).tolist()}
                for slot, label in enumerate(clip.distractor_label)
                if label >= 0
            ],
            "snr_db": scenario.snr_db,
            "material": scenario.material,
            "sources": clip.extra,
        }
        write_sidecar(path, sidecar)
        written.append(path)
    write_attribution(bank, [json.loads(p.with_suffix(".json").read_text())["sources"] for p in written], out.parent)
    return written


def write_attribution(bank: Bank, used: list[dict], assets: Path) -> Path:
    """`assets/ATTRIBUTION.md`: every source file behind the examples, with license and author."""
    ids = set()
    for sources in used:
        ids |= {sources["sprite"], sources["sound"], sources["background"], sources["noise"]}
        ids |= {d["sprite"] for d in sources["distractors"]}
    soundfonts = {i.split(":", 1)[1] for i in ids if i and i.startswith("notes:")}
    lines = [
        "# Attribution",
        "",
        "The example videos in `examples/` are AV-Synth clips composed by `python -m avdemo.data examples`",
        "from the files below, taken from Debian packages (their copyright files give the full terms).",
        "The complete list of files the asset bank may use is `avdemo/data/manifest.json`.",
        "",
        "| kind | id | package | file | license | attribution |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ("sprites", "recordings", "backgrounds", "noise"):
        for item in bank.index.get(kind, []):
            if item["id"] in ids:
                where = item["path"] + (f" :: {item['member']}" if item.get("member") else "")
                lines.append(f"| {kind} | {item['id']} | {item['package']} | `{where}` | {item['license']} | {item['attribution']} |")
    for font in bank.index.get("soundfonts", []):
        if font["id"] in soundfonts:
            lines.append(f"| soundfont | {font['id']} | {font['package']} | `{font['path']}` | {font['license']} | {font['attribution']} |")
    lines += ["", "## Packages", ""]
    for name, package in sorted(bank.index.get("packages", {}).items()):
        lines.append(f"- `{name}` {package['version']}: {package['license']} (`{package['copyright']}`)")
    path = assets / "ATTRIBUTION.md"
    path.write_text("\n".join(lines) + "\n")
    return path
