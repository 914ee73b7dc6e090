"""AV-Synth clips: a deterministic function of (split, index, seed) over the asset bank.

A clip is a background crop, the sounding object (a sprite of the clip's class) moving with
the loudness of its sound, 0-2 silent distractors (often a look-alike class: violin beside
cello, duck beside rooster), and a 65535-sample waveform at 11025 Hz: a melody of
pre-rendered notes or an augmented real recording (pitch, gain, offset, loops) over a noise
bed at a random SNR. Unlike the papers' datasets, every clip knows where its sound comes
from: the sounding object's box and mask per frame, and the distractors' boxes and labels.

Generation is two steps, so that examples can be staged: `plan_clip` draws every random
choice into a `ClipPlan`; `render_clip` turns a plan into pixels and samples.

Splits: "train", "val" and "test" draw from the bank's "train" material; "test-heldout"
from its "heldout" material (sprites, recordings, backgrounds, noise beds and the second
soundfont never seen in training), wherever a class has such material. Only "train" clips
have their audio augmented toward real recordings (`audio_augment`: room, microphone,
band limits, noise floor; a quarter of the recordings played once in silence, as a short
upload is), so "val" and "test" measure the clean in-distribution task.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from .. import FRAME_SIZE, NUM_SAMPLES, SAMPLE_RATE
from .audio_augment import toward_real
from .bank import Bank, NoteSet, Photo, Sound, Sprite, load_bank
from .shards import ClipRecord, to_sample

GENERATOR_VERSION = 2  # 2: training clips' audio augmented toward real recordings
SPLIT_MATERIAL = {"train": "train", "val": "train", "test": "train", "test-heldout": "heldout"}
SPLIT_CODES = {"train": 0, "val": 1, "test": 2, "test-heldout": 3}
SPLIT_SIZES = {"train": 400, "val": 50, "test": 100, "test-heldout": 100}
"""Clips per class in each split."""
MAX_DISTRACTORS = 2
PENTATONIC = (0, 2, 4, 7, 9)


@dataclass(frozen=True)
class SynthConfig:
    """How clips look and sound. The defaults are AV-Synth's."""

    frames: int = 1
    size: int = FRAME_SIZE
    num_samples: int = NUM_SAMPLES
    object_scale: tuple[float, float] = (0.35, 0.55)  # longer side of the sounding object / frame side
    distractor_counts: tuple[float, float, float] = (0.25, 0.4, 0.35)  # P(0), P(1), P(2) distractors
    confusable_probability: float = 0.6
    melody_probability: float = 0.5  # instruments with notes and recordings
    snr_db: tuple[float, float] = (0.0, 20.0)
    peak: tuple[float, float] = (0.3, 0.8)


@dataclass
class Placement:
    """A sprite on the frame: centre in [0, 1] frame units, longer side as a fraction of the frame."""

    label: int
    sprite: Sprite
    scale: float
    centre: tuple[float, float]
    flip: bool


@dataclass
class ClipPlan:
    """Every random choice behind one clip (see `plan_clip`); `render_clip` makes it real."""

    label: int
    source: Placement
    distractors: list[Placement]
    background: Photo
    crop: tuple[float, float, float]  # x0, y0 (fractions of the free room) and side (fraction of the short side)
    background_flip: bool
    brightness: float
    sound: Sound | NoteSet
    audio_seed: int
    noise: Sound | None
    snr_db: float
    peak: float
    metadata: dict = field(default_factory=dict)
    augment_audio: bool = False


def material_pool(table: dict, role: str, label: str) -> list:
    """Material of a class for a role, falling back to "train" where the class has no held-out items."""
    return table[role].get(label) or table["train"].get(label) or []


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = np.maximum(a[:2], b[:2])
    x1, y1 = np.minimum(a[2:], b[2:])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _extent(sprite: Sprite, scale: float) -> tuple[float, float]:
    """Half width and half height of a placed sprite in frame units."""
    height, width = sprite.rgba.shape[:2]
    longest = max(height, width)
    return scale * width / longest / 2, scale * height / longest / 2


def _frame_box(sprite: Sprite, scale: float, centre: tuple[float, float]) -> np.ndarray:
    half_w, half_h = _extent(sprite, scale)
    return np.array([centre[0] - half_w, centre[1] - half_h, centre[0] + half_w, centre[1] + half_h])


def _random_centre(rng: np.random.Generator, sprite: Sprite, scale: float) -> tuple[float, float]:
    half_w, half_h = _extent(sprite, scale)
    return float(rng.uniform(half_w, 1 - half_w)), float(rng.uniform(half_h + 0.06, 1 - half_h))


def plan_clip(bank: Bank, split: str, index: int, seed: int = 0, config: SynthConfig = SynthConfig()) -> ClipPlan:
    """Draw every random choice for clip `index` of `split`: same arguments, same clip.

    The label cycles through the classes (`index % num_classes`), so the first
    `n * num_classes` clips of a split hold n clips of each class.
    """
    if split not in SPLIT_CODES:
        raise ValueError(f"unknown split {split!r}; choose one of {list(SPLIT_CODES)}")
    role = SPLIT_MATERIAL[split]
    rng = np.random.default_rng([seed, SPLIT_CODES[split], index])
    label = index % len(bank.classes)
    name = bank.classes[label]
    sprite = material_pool(bank.sprites, role, name)[rng.integers(len(material_pool(bank.sprites, role, name)))]
    scale = float(rng.uniform(*config.object_scale))
    source = Placement(label, sprite, scale, _random_centre(rng, sprite, scale), bool(rng.random() < 0.5))

    distractors: list[Placement] = []
    count = int(rng.choice(len(config.distractor_counts), p=config.distractor_counts))
    others = [c for c in bank.classes if c != name and material_pool(bank.sprites, role, c)]
    look_alikes = [c for c in bank.confusable.get(name, []) if c in others]
    taken = [_frame_box(sprite, scale, source.centre)]
    for _ in range(min(count, MAX_DISTRACTORS, len(others))):
        unused = [c for c in (look_alikes if rng.random() < config.confusable_probability else []) if c not in
                  {bank.classes[d.label] for d in distractors}] or others
        other = unused[rng.integers(len(unused))]
        other_sprite = material_pool(bank.sprites, role, other)[rng.integers(len(material_pool(bank.sprites, role, other)))]
        other_scale = float(rng.uniform(*config.object_scale))
        candidates = [_random_centre(rng, other_sprite, other_scale) for _ in range(20)]
        overlaps = [max(_iou(_frame_box(other_sprite, other_scale, c), t) for t in taken) for c in candidates]
        centre = candidates[int(np.argmin(overlaps))]  # the least overlapping of 20 random spots
        taken.append(_frame_box(other_sprite, other_scale, centre))
        distractors.append(Placement(bank.classes.index(other), other_sprite, other_scale, centre, bool(rng.random() < 0.5)))

    notes = material_pool(bank.notes, role, name) if role == "train" else bank.notes["heldout"].get(name, [])
    recordings = material_pool(bank.recordings, role, name)
    use_melody = bool(notes) and (not recordings or rng.random() < config.melody_probability)
    sound = notes[rng.integers(len(notes))] if use_melody else recordings[rng.integers(len(recordings))]
    backgrounds = bank.backgrounds[role] or bank.backgrounds["train"]
    noises = bank.noise[role] or bank.noise["train"]
    plan = ClipPlan(
        label=label,
        source=source,
        distractors=distractors,
        background=backgrounds[rng.integers(len(backgrounds))],
        crop=(float(rng.random()), float(rng.random()), float(rng.uniform(0.6, 1.0))),
        background_flip=bool(rng.random() < 0.5),
        brightness=float(rng.uniform(0.8, 1.2)),
        sound=sound,
        audio_seed=int(rng.integers(2**31)),
        noise=noises[rng.integers(len(noises))] if noises else None,
        snr_db=float(rng.uniform(*config.snr_db)),
        peak=float(rng.uniform(*config.peak)),
        augment_audio=split == "train",
    )
    plan.metadata = {"split": split, "index": index, "seed": seed, "generator": GENERATOR_VERSION}
    return plan


# ---------------------------------------------------------------------------------------
# Sound


def _melody(notes: NoteSet, rng: np.random.Generator, length: int) -> np.ndarray:
    """A pentatonic random-walk melody of pre-rendered notes, with rests, filling `length` samples."""
    pitches = [i for i, p in enumerate(notes.pitches) if (p - notes.pitches[0]) % 12 in PENTATONIC] or list(
        range(len(notes.pitches))
    )
    beat = rng.choice([0.2, 0.25, 0.3])
    out = np.zeros(length + notes.notes.shape[1], np.float32)
    position = int(rng.uniform(0, 0.5) * SAMPLE_RATE)
    step = int(rng.integers(len(pitches)))
    fade = np.linspace(1, 0, int(0.03 * SAMPLE_RATE), dtype=np.float32)
    while position < length:
        duration = int(beat * rng.choice([1, 1, 2, 3]) * SAMPLE_RATE)
        if rng.random() > 0.12:  # else a rest
            note = notes.notes[pitches[step]][: duration + len(fade)].copy()
            note[-len(fade) :] *= fade[: len(note[-len(fade) :])]
            out[position : position + len(note)] += rng.uniform(0.5, 1.0) * note
        step = int(np.clip(step + rng.integers(-2, 3), 0, len(pitches) - 1))
        position += duration
    return out[:length]


def _pitch_shift(samples: np.ndarray, semitones: float) -> np.ndarray:
    """Resample so that pitch (and speed) change together, as a tape would."""
    ratio = 2 ** (semitones / 12)
    positions = np.arange(0, len(samples) - 1, ratio)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


ONE_SHOT_PROBABILITY = 0.25


def _recording(sound: Sound, rng: np.random.Generator, length: int, one_shot: bool = False) -> np.ndarray:
    """An augmented recording: pitch-shifted up to 2 semitones, looped with gaps from a random
    offset, or with `one_shot` played once at a random place with silence around it."""
    samples = _pitch_shift(sound.samples, rng.uniform(-2, 2))
    out = np.zeros(length, np.float32)
    if one_shot:
        piece = samples[int(rng.integers(max(1, len(samples) - length + 1))):][:length]
        start = int(rng.integers(length - len(piece) + 1))
        out[start : start + len(piece)] = piece
        return out
    position = int(-rng.uniform(0, 0.5) * len(samples)) if len(samples) > length else int(rng.uniform(0, 0.3) * SAMPLE_RATE)
    while position < length:
        start = max(0, -position)
        piece = samples[start : start + length - max(position, 0)]
        out[max(position, 0) : max(position, 0) + len(piece)] += rng.uniform(0.7, 1.0) * piece
        position += len(samples) + int(rng.uniform(0.05, 0.6) * SAMPLE_RATE)
    return out


def _noise_bed(noise: Sound, rng: np.random.Generator, length: int) -> np.ndarray:
    repeats = -(-length // len(noise.samples)) + 1
    looped = np.tile(noise.samples, repeats)
    start = int(rng.integers(len(noise.samples)))
    return looped[start : start + length]


def render_sound(plan: ClipPlan, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """(waveform `(L,)` float32 in [-1, 1] with the noise bed, the source alone `(L,)` before noise)."""
    rng = np.random.default_rng(plan.audio_seed)
    if isinstance(plan.sound, NoteSet):
        source = _melody(plan.sound, rng, num_samples)
    else:
        one_shot = plan.augment_audio and rng.random() < ONE_SHOT_PROBABILITY
        source = _recording(plan.sound, rng, num_samples, one_shot)
    source *= plan.peak / max(float(np.abs(source).max()), 1e-6)
    mixture = source.copy()
    if plan.noise is not None:
        bed = _noise_bed(plan.noise, rng, num_samples)
        target = np.linalg.norm(source) / (10 ** (plan.snr_db / 20))
        mixture += bed * target / max(float(np.linalg.norm(bed)), 1e-9)
    if plan.augment_audio:
        mixture = toward_real(mixture, rng)
    return np.clip(mixture, -1, 1).astype(np.float32), source


def loudness_envelope(source: np.ndarray, times: np.ndarray, window: float = 0.1) -> np.ndarray:
    """RMS of the source around each time, scaled to [0, 1] by the clip's loudest moment."""
    half = int(window * SAMPLE_RATE / 2)
    centres = np.clip((times * SAMPLE_RATE).astype(int), 0, len(source) - 1)
    rms = np.array([np.sqrt(np.mean(source[max(0, c - half) : c + half] ** 2)) for c in centres])
    frame = int(window * SAMPLE_RATE)
    usable = len(source) // frame * frame
    loudest = np.sqrt(np.mean(source[:usable].reshape(-1, frame) ** 2, axis=1)).max() if usable else rms.max()
    return np.clip(rms / max(float(loudest), 1e-9), 0, 1)


# ---------------------------------------------------------------------------------------
# Pixels


def _background(plan: ClipPlan, size: int) -> np.ndarray:
    image = plan.background.rgb
    height, width = image.shape[:2]
    side = int(plan.crop[2] * min(height, width))
    x0, y0 = int(plan.crop[0] * (width - side)), int(plan.crop[1] * (height - side))
    crop = cv2.resize(image[y0 : y0 + side, x0 : x0 + side], (size, size), interpolation=cv2.INTER_AREA)
    if plan.background_flip:
        crop = crop[:, ::-1]
    return np.clip(crop.astype(np.float32) * plan.brightness, 0, 255)


def _paste(canvas: np.ndarray, placement: Placement, scale: float, lift: float) -> tuple[np.ndarray, np.ndarray]:
    """Alpha-blend a sprite onto `canvas` `(S, S, 3)` float; returns its mask `(S, S)` bool and box."""
    size = canvas.shape[0]
    rgba = placement.sprite.rgba[:, ::-1] if placement.flip else placement.sprite.rgba
    longest = max(rgba.shape[:2])
    width = max(1, round(rgba.shape[1] * scale * size / longest))
    height = max(1, round(rgba.shape[0] * scale * size / longest))
    resized = cv2.resize(np.ascontiguousarray(rgba), (width, height), interpolation=cv2.INTER_AREA)
    left = round(placement.centre[0] * size - width / 2)
    top = round((placement.centre[1] - lift) * size - height / 2)
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + width, size), min(top + height, size)
    mask = np.zeros((size, size), bool)
    if x1 <= x0 or y1 <= y0:
        return mask, np.full(4, np.nan, np.float32)
    patch = resized[y0 - top : y1 - top, x0 - left : x1 - left].astype(np.float32)
    alpha = patch[..., 3:] / 255
    canvas[y0:y1, x0:x1] = canvas[y0:y1, x0:x1] * (1 - alpha) + patch[..., :3] * alpha
    mask[y0:y1, x0:x1] = alpha[..., 0] > 0.5
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return mask, np.full(4, np.nan, np.float32)
    return mask, np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def render_clip(bank: Bank, plan: ClipPlan, config: SynthConfig = SynthConfig()) -> ClipRecord:
    """Pixels, samples and ground truth of a planned clip.

    Returns a `ClipRecord`: frames `(T, S, S, 3)` uint8, waveform `(L,)` float32 in [-1, 1]
    at 11025 Hz, the sounding object's box `(T, 4)` (x0, y0, x1, y1 in pixels) and mask
    `(T, S, S)`, the distractors' boxes `(T, 2, 4)` (NaN where absent) and labels `(2,)`
    (-1 where absent). The sounding object grows and jumps with the loudness of its sound.
    """
    size, steps = config.size, config.frames
    waveform, source = render_sound(plan, config.num_samples)
    window = config.num_samples / SAMPLE_RATE
    times = (np.arange(steps) + 0.5) * window / steps
    envelope = loudness_envelope(source, times)
    background = _background(plan, size)
    frames = np.empty((steps, size, size, 3), np.uint8)
    masks = np.zeros((steps, size, size), bool)
    boxes = np.zeros((steps, 4), np.float32)
    distractor_boxes = np.full((steps, MAX_DISTRACTORS, 4), np.nan, np.float32)
    for step, loudness in enumerate(envelope):
        canvas = background.copy()
        for slot, distractor in enumerate(plan.distractors):
            _, distractor_boxes[step, slot] = _paste(canvas, distractor, distractor.scale, 0.0)
        masks[step], boxes[step] = _paste(canvas, plan.source, plan.source.scale * (1 + 0.12 * loudness), 0.06 * loudness)
        frames[step] = np.round(canvas).astype(np.uint8)
    distractor_labels = np.full(MAX_DISTRACTORS, -1, np.int64)
    distractor_labels[: len(plan.distractors)] = [d.label for d in plan.distractors]
    metadata = {
        **plan.metadata,
        "class": bank.classes[plan.label],
        "sprite": plan.source.sprite.id,
        "sound": plan.sound.id if isinstance(plan.sound, Sound) else f"notes:{plan.sound.soundfont}",
        "background": plan.background.id,
        "noise": plan.noise.id if plan.noise is not None else None,
        "snr_db": round(plan.snr_db, 2),
        "distractors": [{"class": bank.classes[d.label], "sprite": d.sprite.id} for d in plan.distractors],
    }
    return ClipRecord(frames, waveform, plan.label, boxes, masks, distractor_boxes, distractor_labels, metadata)


def generate_clip(bank: Bank, split: str, index: int, seed: int = 0, config: SynthConfig = SynthConfig()) -> ClipRecord:
    """Clip `index` of `split`: `render_clip(plan_clip(...))`."""
    return render_clip(bank, plan_clip(bank, split, index, seed, config), config)


class SynthDataset(Dataset):
    """A split generated on the fly, as dicts like `ShardDataset`'s. Each item depends only on
    (split, index, seed + epoch), so DataLoader workers need no seeding of their own; call
    `set_epoch` to draw new training clips each epoch. The bank loads lazily in each worker."""

    def __init__(
        self,
        bank: Bank | Path | None,
        split: str,
        per_class: int | None = None,
        seed: int = 0,
        config: SynthConfig = SynthConfig(),
    ):
        self._bank = bank if isinstance(bank, Bank) else None
        self._bank_root = None if isinstance(bank, Bank) else bank
        self.split, self.seed, self.config, self.epoch = split, seed, config, 0
        self.per_class = per_class if per_class is not None else SPLIT_SIZES[split]

    @property
    def bank(self) -> Bank:
        if self._bank is None:
            self._bank = load_bank(self._bank_root)
        return self._bank

    @property
    def classes(self) -> list[str]:
        return self.bank.classes

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_class * len(self.bank.classes)

    def record(self, index: int) -> ClipRecord:
        return generate_clip(self.bank, self.split, index, self.seed + 1_000_003 * self.epoch, self.config)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        return to_sample(self.record(index))


def with_changes(plan: ClipPlan, **changes) -> ClipPlan:
    """A copy of a plan with some choices replaced (used to stage teaching examples)."""
    return dataclasses.replace(plan, **changes)


# ---------------------------------------------------------------------------------------
# Splits on disk


def split_dir(split: str, seed: int = 0, config: SynthConfig = SynthConfig(), root: Path | None = None) -> Path:
    """Where a generated split is cached: one folder per generator version, clip format and seed
    ("T4-S224-seed0"; a clip length other than NUM_SAMPLES adds "-L<samples>")."""
    from .bank import BANK_VERSION
    from .cache import cache_dir

    base = Path(root) if root is not None else cache_dir()
    length = f"-L{config.num_samples}" if config.num_samples != NUM_SAMPLES else ""
    return base / f"av-synth-g{GENERATOR_VERSION}-b{BANK_VERSION}" / f"T{config.frames}-S{config.size}{length}-seed{seed}" / split


def data_version(folder: Path) -> str:
    """The data version a cached split's folder (from `split_dir`) stands for, as results
    stores name it: generator and bank, then clip format and seed ("av-synth-g2-b2/T4-S224-seed0")."""
    folder = Path(folder)
    return f"{folder.parent.parent.name}/{folder.parent.name}"


_WORKER_BANK: Bank | None = None


def _worker_clip(arguments: tuple) -> ClipRecord:
    split, index, seed, config = arguments
    return generate_clip(_WORKER_BANK, split, index, seed, config)


def write_synth_split(
    bank: Bank,
    split: str,
    out: Path | None = None,
    per_class: int | None = None,
    seed: int = 0,
    config: SynthConfig = SynthConfig(),
    workers: int = 0,
    progress=None,
) -> Path:
    """Generate a whole split to disk shards (for val/test, or to pre-generate training clips
    when generation would starve training). `workers` > 0 uses that many processes."""
    import multiprocessing

    from .shards import write_split

    global _WORKER_BANK
    per_class = per_class if per_class is not None else SPLIT_SIZES[split]
    out = Path(out) if out is not None else split_dir(split, seed, config)
    count = per_class * len(bank.classes)
    jobs = [(split, index, seed, config) for index in range(count)]
    source = {
        "generator": GENERATOR_VERSION,
        "bank": bank.index.get("manifest_sha256"),
        "split": split,
        "per_class": per_class,
        "seed": seed,
        "config": dataclasses.asdict(config),
    }
    _WORKER_BANK = bank
    try:
        if workers > 0:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                records = pool.imap(_worker_clip, jobs, chunksize=8)
                return write_split(out, _counted(records, count, progress), bank.classes, source)
        return write_split(out, _counted(map(_worker_clip, jobs), count, progress), bank.classes, source)
    finally:
        _WORKER_BANK = None


def _counted(records, total: int, progress):
    for number, record in enumerate(records, start=1):
        if progress is not None:
            progress(number, total)
        yield record
