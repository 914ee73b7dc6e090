"""The AV-Synth asset bank: the curated sprites, photos, recordings, notes and noise beds that
clips are composed from, built once from Debian and npm packages and loaded by the generator.

`build_bank` follows `manifest.json` (checked in: every source file, its license and
attribution, and whether it is "train" material or "heldout", reserved for the held-out
test) and writes a compact, versioned folder `<cache>/bank-v<N>/`:

    bank.json                      index: every item, its source, license and role
    sprites/<class>/<id>.png       RGBA cutouts cropped to their alpha, longer side <= 256 px
    recordings/<class>/<id>.wav    real recordings, 16-bit mono at 11025 Hz, silence trimmed
    notes/<soundfont>/<class>.npz  General MIDI notes pre-rendered per instrument (int16); a
                                   soundfont with a "classes" list renders only those
    backgrounds/<id>.jpg           photos, shorter side 288 px
    noise/<id>.wav                 noise beds, 16-bit mono at 11025 Hz

so clip generation needs no soundfont library, no SVG renderer and no package. The bank
is built, never committed: `python -m avdemo.data bank`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import wave
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .. import SAMPLE_RATE
from .cache import cache_dir

BANK_VERSION = 2
MANIFEST = Path(__file__).with_name("manifest.json")
ROLES = ("train", "heldout")
SPRITE_MAX_SIDE = 256
BACKGROUND_SHORT_SIDE = 288
NOTE_HOLD_SECONDS = 0.7
NOTE_RELEASE_SECONDS = 0.3
RECORDING_MAX_SECONDS = 12.0
NOISE_MAX_SECONDS = 20.0
BANK_LIMIT_BYTES = 28 * 2**20


def manifest_digest(manifest_path: Path = MANIFEST) -> str:
    return hashlib.sha256(Path(manifest_path).read_bytes()).hexdigest()


def default_bank_dir() -> Path:
    return cache_dir() / f"bank-v{BANK_VERSION}"


# ---------------------------------------------------------------------------------------
# Reading sources


@lru_cache(maxsize=4)
def _open_zip(path: Path) -> zipfile.ZipFile:
    """Opening a zip reads its whole directory (0 A.D.'s public.zip lists 36k files): do it once."""
    return zipfile.ZipFile(path)


def _source_bytes(entry: dict, package_roots: dict[str, Path]) -> bytes:
    """The raw bytes of a manifest entry: a file in an extracted package, or a member of an .rcc or .zip."""
    path = package_roots[entry["package"]] / entry["path"]
    if entry.get("member") and path.suffix == ".rcc":
        from .rcc import read_rcc

        return read_rcc(path, entry["member"])
    if entry.get("member") and path.suffix == ".zip":
        return _open_zip(path).read(entry["member"])
    return path.read_bytes()


def _crop_to_alpha(rgba: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(rgba[..., 3] > 8)
    if len(ys) == 0:
        raise ValueError("the sprite is fully transparent")
    return rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _limit_side(image: np.ndarray, longest: int) -> np.ndarray:
    scale = longest / max(image.shape[:2])
    if scale >= 1:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def iconify_svg(icon_set: dict, name: str) -> bytes:
    """One icon of an Iconify JSON set (`icons.json`) as a standalone SVG document.

    Iconify stores only each icon's inner `body`; its size is the icon's own `width`/`height`,
    else the set's (Iconify's default is 16), and `left`/`top` shift the view box.
    """
    if name not in icon_set.get("icons", {}):
        raise KeyError(f"icon {name!r} is not in the Iconify set {icon_set.get('prefix', '?')!r}")
    icon = icon_set["icons"][name]
    width = icon.get("width", icon_set.get("width", 16))
    height = icon.get("height", icon_set.get("height", 16))
    box = f"{icon.get('left', 0)} {icon.get('top', 0)} {width} {height}"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'width="{width}" height="{height}" viewBox="{box}">{icon["body"]}</svg>').encode()


def cut_out_white(bgr: np.ndarray, tolerance: int = 24) -> np.ndarray:
    """An RGBA cutout of a drawing on a near-white background: the white connected to the image
    border becomes transparent, so white inside the figure (wool, eyes) stays opaque."""
    near_white = np.pad((bgr.min(axis=2) >= 255 - tolerance).astype(np.uint8), 1, constant_values=1)
    cv2.floodFill(near_white, None, (0, 0), 2)  # the 1-pixel white frame joins all border white
    background = near_white[1:-1, 1:-1] == 2
    alpha = np.where(background, 0, 255).astype(np.uint8)
    alpha = cv2.GaussianBlur(cv2.erode(alpha, np.ones((3, 3), np.uint8)), (3, 3), 0)
    return np.dstack([cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), alpha])


def render_sprite(entry: dict, package_roots: dict[str, Path]) -> np.ndarray:
    """A manifest sprite as an RGBA uint8 cutout `(h, w, 4)`, cropped to its alpha, longer side <= 256.

    Kinds: "png"/"webp" (images with alpha), "svg", "iconify" (an icon named by `member` in an
    Iconify `icons.json`), "emoji" (a glyph of the Noto colour font) and "jpg-white" (a drawing
    on a white background, cut out by `cut_out_white`).
    """
    kind = entry["kind"]
    if kind == "emoji":
        from PIL import Image, ImageDraw, ImageFont

        font = ImageFont.truetype(str(package_roots[entry["package"]] / entry["path"]), 109)
        canvas = Image.new("RGBA", (180, 180))
        ImageDraw.Draw(canvas).text((20, 20), entry["member"], font=font, embedded_color=True)
        rgba = np.array(canvas)
    elif kind == "jpg-white":
        bgr = cv2.imdecode(np.frombuffer(_source_bytes(entry, package_roots), np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"sprite {entry['id']} is not a readable image")
        rgba = cut_out_white(bgr)
    elif kind in ("png", "webp", "svg", "iconify"):
        if kind == "iconify":
            icon_set = _icon_set(package_roots[entry["package"]] / entry["path"])
            data = iconify_svg(icon_set, entry["member"])
        else:
            data = _source_bytes(entry, package_roots)
        if kind in ("svg", "iconify"):
            import cairosvg

            data = cairosvg.svg2png(bytestring=data, output_width=2 * SPRITE_MAX_SIDE)
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if decoded is None or decoded.ndim != 3 or decoded.shape[2] != 4:
            raise ValueError(f"sprite {entry['id']} has no alpha channel")
        if decoded.dtype != np.uint8:
            decoded = (decoded / 257).astype(np.uint8)
        rgba = cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGBA)
    else:
        raise ValueError(f"sprite {entry['id']} has an unknown kind {kind!r}")
    return _limit_side(_crop_to_alpha(rgba), SPRITE_MAX_SIDE)


@lru_cache(maxsize=4)
def _icon_set(path: Path) -> dict:
    """A parsed Iconify `icons.json` (megabytes of SVG for thousands of icons: parse it once per build)."""
    return json.loads(path.read_text(encoding="utf-8"))


def _trim_silence(samples: np.ndarray, threshold: float = 0.02) -> np.ndarray:
    loud = np.nonzero(np.abs(samples) > threshold * max(np.abs(samples).max(), 1e-6))[0]
    return samples[loud[0] : loud[-1] + 1] if len(loud) else samples


def load_sound(entry: dict, package_roots: dict[str, Path], max_seconds: float) -> np.ndarray:
    """A manifest recording or noise bed as `(n,)` float32 in [-1, 1], mono at 11025 Hz."""
    from ..media import read_audio  # only building the bank decodes; loading a built one needs no PyAV

    samples = read_audio(_source_bytes(entry, package_roots), SAMPLE_RATE)
    if entry.get("trim"):
        start, end = entry["trim"]
        samples = samples[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
    samples = _trim_silence(samples)[: int(max_seconds * SAMPLE_RATE)]
    if len(samples) < SAMPLE_RATE // 10:
        raise ValueError(f"{entry['id']} holds less than 0.1 s of sound")
    return samples


def render_notes(soundfont: Path, program: int, pitches: list[int]) -> np.ndarray:
    """General MIDI notes `(len(pitches), n)` float32, each held 0.7 s then released 0.3 s."""
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=SAMPLE_RATE)
    font = synth.sfload(str(soundfont))
    synth.program_select(0, font, 0, program)
    hold, release = int(NOTE_HOLD_SECONDS * SAMPLE_RATE), int(NOTE_RELEASE_SECONDS * SAMPLE_RATE)
    notes = []
    for pitch in pitches:
        synth.noteon(0, pitch, 100)
        held = np.frombuffer(synth.generate(hold), dtype=np.float32)
        synth.noteoff(0, pitch)
        released = np.frombuffer(synth.generate(release), dtype=np.float32)
        synth.sounds_off()
        notes.append(np.concatenate([held, released]).reshape(-1, 2).mean(axis=1))
    return np.stack(notes)


# ---------------------------------------------------------------------------------------
# Writing the bank


def _write_wav(path: Path, samples: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes(np.round(np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as handle:
        return np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2").astype(np.float32) / 32767


def write_notes(bank_root: Path, soundfont: str, role: str, label: str, pitches, notes: np.ndarray) -> dict:
    """Store rendered notes `(n_pitches, n)` float in [-1, 1] (peak-normalised to 0.9 per set)."""
    notes = notes * (0.9 / max(float(np.abs(notes).max()), 1e-6))
    relative = Path("notes") / soundfont / f"{label}.npz"
    (bank_root / relative).parent.mkdir(parents=True, exist_ok=True)
    np.savez(bank_root / relative, pitches=np.asarray(pitches, np.int16), notes=np.round(notes * 32767).astype(np.int16))
    return {"soundfont": soundfont, "class": label, "role": role, "file": str(relative)}


def _record(entry: dict, file: Path, **extra) -> dict:
    keys = ("id", "role", "license", "attribution", "package", "path", "member")
    return {**{k: entry[k] for k in keys if entry.get(k) is not None}, "file": str(file), **extra}


def _entries(manifest: dict) -> list[dict]:
    entries = manifest.get("soundfonts", []) + manifest["backgrounds"] + manifest["noise"]
    for spec in manifest["classes"].values():
        entries += spec["sprites"] + spec["recordings"]
    return entries


def fetch_sources(manifest: dict) -> dict[str, Path]:
    """Fetch the manifest's packages: Debian ones whole, or only the files the manifest names
    where a package says `"partial": true`; npm ones (`"registry": "npm"`) always partially."""
    from .debian import fetch_packages
    from .npm import fetch_npm_packages

    needed = defaultdict(set)
    for entry in _entries(manifest):
        needed[entry["package"]].add(entry["path"])
    packages = manifest["packages"]
    npm = {name: spec for name, spec in packages.items() if spec.get("registry") == "npm"}
    debian = sorted(set(packages) - set(npm))
    partial = {name: sorted(needed[name] | {packages[name]["copyright"]}) for name in debian if packages[name].get("partial")}
    return {**fetch_packages(debian, only=partial), **fetch_npm_packages(npm, {name: sorted(needed[name]) for name in npm})}


def build_bank(
    manifest_path: Path = MANIFEST,
    out: Path | None = None,
    package_roots: dict[str, Path] | None = None,
    log=print,
) -> Path:
    """Build the bank described by a manifest into `out` (default: the versioned cache folder).

    `package_roots` maps package names to extracted folders; by default the packages are
    fetched from Debian and npm (see `fetch_sources`). Returns the bank folder.
    """
    manifest = json.loads(Path(manifest_path).read_text())
    out = Path(out) if out is not None else default_bank_dir()
    if package_roots is None:
        package_roots = fetch_sources(manifest)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    index = defaultdict(list)
    for label, spec in manifest["classes"].items():
        for entry in spec["sprites"]:
            relative = Path("sprites") / label / f"{entry['id']}.png"
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            sprite = render_sprite(entry, package_roots)
            cv2.imwrite(str(staging / relative), cv2.cvtColor(sprite, cv2.COLOR_RGBA2BGRA))
            index["sprites"].append(_record(entry, relative, **{"class": label, "kind": entry["kind"]}))
        for entry in spec["recordings"]:
            relative = Path("recordings") / label / f"{entry['id']}.wav"
            samples = load_sound(entry, package_roots, RECORDING_MAX_SECONDS)
            _write_wav(staging / relative, samples)
            index["recordings"].append(_record(entry, relative, **{"class": label, "seconds": len(samples) / SAMPLE_RATE}))
        log(f"  {label}: {len(spec['sprites'])} sprites, {len(spec['recordings'])} recordings")
    for font in manifest.get("soundfonts", []):
        path = package_roots[font["package"]] / font["path"]
        for label, spec in manifest["classes"].items():
            if spec.get("gm_program") is None or label not in font.get("classes", [label]):
                continue
            low, high = spec["note_range"]
            pitches = list(range(low, high + 1))
            notes = render_notes(path, spec["gm_program"], pitches)
            index["notes"].append(write_notes(staging, font["id"], font["role"], label, pitches, notes))
        log(f"  notes from {font['id']} ({font['role']})")
    for entry in manifest["backgrounds"]:
        relative = Path("backgrounds") / f"{entry['id']}.jpg"
        image = cv2.imdecode(np.frombuffer(_source_bytes(entry, package_roots), np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"background {entry['id']} is not a readable image")
        scale = BACKGROUND_SHORT_SIDE / min(image.shape[:2])
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        (staging / relative).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(staging / relative), image, [cv2.IMWRITE_JPEG_QUALITY, 88])
        index["backgrounds"].append(_record(entry, relative))
    for entry in manifest["noise"]:
        relative = Path("noise") / f"{entry['id']}.wav"
        _write_wav(staging / relative, load_sound(entry, package_roots, NOISE_MAX_SECONDS))
        index["noise"].append(_record(entry, relative))
    size = sum(f.stat().st_size for f in staging.rglob("*") if f.is_file())
    if size > BANK_LIMIT_BYTES:
        raise RuntimeError(f"the bank is {size / 2**20:.1f} MiB, over its {BANK_LIMIT_BYTES / 2**20:.0f} MiB budget")
    classes = {label: {"group": spec["group"], "confusable": spec["confusable"]} for label, spec in manifest["classes"].items()}
    bank = {
        "version": BANK_VERSION,
        "manifest_sha256": manifest_digest(manifest_path),
        "sample_rate": SAMPLE_RATE,
        "size_bytes": size,
        "classes": classes,
        "packages": manifest["packages"],
        "soundfonts": manifest.get("soundfonts", []),
        **index,
    }
    (staging / "bank.json").write_text(json.dumps(bank, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    log(f"bank written to {out} ({size / 2**20:.1f} MiB)")
    return out


# ---------------------------------------------------------------------------------------
# Loading the bank


@dataclass
class Sprite:
    id: str
    rgba: np.ndarray  # (h, w, 4) uint8


@dataclass
class Sound:
    id: str
    samples: np.ndarray  # (n,) float32 in [-1, 1] at 11025 Hz


@dataclass
class NoteSet:
    soundfont: str
    pitches: np.ndarray  # (p,) MIDI note numbers
    notes: np.ndarray  # (p, n) float32 in [-1, 1]


@dataclass
class Photo:
    id: str
    rgb: np.ndarray  # (h, w, 3) uint8


@dataclass
class Bank:
    """The bank in memory, organised by role ("train" / "heldout") then class."""

    root: Path
    classes: list[str]
    groups: dict[str, str]
    confusable: dict[str, list[str]]
    sprites: dict[str, dict[str, list[Sprite]]] = field(default_factory=dict)
    recordings: dict[str, dict[str, list[Sound]]] = field(default_factory=dict)
    notes: dict[str, dict[str, list[NoteSet]]] = field(default_factory=dict)
    backgrounds: dict[str, list[Photo]] = field(default_factory=dict)
    noise: dict[str, list[Sound]] = field(default_factory=dict)
    index: dict = field(default_factory=dict)


def load_bank(root: Path | None = None, manifest_path: Path | None = MANIFEST) -> Bank:
    """Load a built bank into memory. With a manifest given, refuse a bank built from another one."""
    root = Path(root) if root is not None else default_bank_dir()
    index_path = root / "bank.json"
    if not index_path.is_file():
        raise FileNotFoundError(f"no asset bank at {root}: build it with `python -m avdemo.data bank`")
    index = json.loads(index_path.read_text())
    if index["version"] != BANK_VERSION:
        raise ValueError(f"the bank at {root} has version {index['version']}, this code needs {BANK_VERSION}")
    if manifest_path is not None and index["manifest_sha256"] != manifest_digest(manifest_path):
        raise ValueError(f"the bank at {root} was built from another manifest: rebuild it with `python -m avdemo.data bank`")
    classes = list(index["classes"])
    bank = Bank(
        root=root,
        classes=classes,
        groups={c: v["group"] for c, v in index["classes"].items()},
        confusable={c: v["confusable"] for c, v in index["classes"].items()},
        sprites={role: defaultdict(list) for role in ROLES},
        recordings={role: defaultdict(list) for role in ROLES},
        notes={role: defaultdict(list) for role in ROLES},
        backgrounds={role: [] for role in ROLES},
        noise={role: [] for role in ROLES},
        index=index,
    )
    for item in index.get("sprites", []):
        bgra = cv2.imread(str(root / item["file"]), cv2.IMREAD_UNCHANGED)
        bank.sprites[item["role"]][item["class"]].append(Sprite(item["id"], cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA)))
    for item in index.get("recordings", []):
        bank.recordings[item["role"]][item["class"]].append(Sound(item["id"], _read_wav(root / item["file"])))
    for item in index.get("notes", []):
        with np.load(root / item["file"]) as stored:
            notes = NoteSet(item["soundfont"], stored["pitches"].astype(int), stored["notes"].astype(np.float32) / 32767)
        bank.notes[item["role"]][item["class"]].append(notes)
    for item in index.get("backgrounds", []):
        bgr = cv2.imread(str(root / item["file"]), cv2.IMREAD_COLOR)
        bank.backgrounds[item["role"]].append(Photo(item["id"], cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    for item in index.get("noise", []):
        bank.noise[item["role"]].append(Sound(item["id"], _read_wav(root / item["file"])))
    return bank
