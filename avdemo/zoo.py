"""The model zoo: trained networks shipped in `checkpoints/`, listed, described and loaded by name.

Each model is `<name>.safetensors` (weights in fp16, or int8 with per-channel scales) beside `<name>.json`, its model
card: config, classes, data, training time and hardware, accuracies, and the SHA-256 and
tensor list of its weights. Loading refuses anything that is not safetensors, weights whose
digest or tensors differ from the card, and cards whose config does not build the weights'
network. A card may name an ExFMem memory (`exfmem`): the model then loads wrapped in it.

This is the model registry: every table, menu and builder asks it which models exist and
what role each plays (`ROLES`), instead of listing names by hand.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .models import ModelConfig, build_model
from .models.folding import fold_batch_norm
from .paths import CHECKPOINTS

CARD_FORMAT = 1
ROLES = ("unimodal", "fusion", "localization", "defense", "backbone")
"""unimodal: the paper's ✓A / ✓V baselines; fusion: the AV variants Table 2 compares;
localization: the audio-guided attention model; defense: entries of `avdemo.defenses`;
backbone: models on the second audio or visual backbone (log-mel CNN, VGG), unimodal or fused,
the surrogates and victims of transfer across architectures (none of the paper's tables)."""
EXFMEM_OPTIONS = ("lam", "mix", "tol", "max_iter", "solver", "rtol")


class ZooError(Exception):
    """A model that cannot be listed or loaded; the message says why."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tensor_manifest(tensors: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    return {name: list(tensor.shape) for name, tensor in sorted(tensors.items())}


INT8_SCALE = ".int8_scale"
INT8_MIN_SIZE = 1024  # weights with fewer values (biases, norms, small heads) stay in `dtype`
INT8_WEIGHTS = "int8 per output channel (fp16 scales), the rest float16"


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A float weight `(out, ...)` -> int8 values of the same shape in [-127, 127] and fp16
    scales `(out,)`, symmetric per output channel: weight ~ values * scale."""
    flat = weight.detach().float().flatten(1)
    scale = (flat.abs().amax(dim=1).clamp_min(1e-12) / 127).half()
    values = torch.round(flat / scale.float()[:, None]).clamp(-127, 127).to(torch.int8)
    return values.view(weight.shape), scale


def dequantize_int8(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stored tensors -> float32 weights wherever an int8 tensor has its `.int8_scale`."""
    result = {name: t for name, t in tensors.items() if not name.endswith(INT8_SCALE)}
    for name in tensors:
        if name.endswith(INT8_SCALE):
            base = name.removesuffix(INT8_SCALE)
            scale = tensors[name].float().view(-1, *[1] * (tensors[base].dim() - 1))
            result[base] = tensors[base].float() * scale
    return result


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], dtype: torch.dtype | None = torch.float16,
                 int8_weights: bool = False) -> dict:
    """Write tensors as safetensors (floating ones cast to `dtype`); returns the card's `weights`
    entry. With `int8_weights`, every floating tensor of 2+ dimensions and at least 1024 values
    (convolution and linear weights) is stored as int8 with per-output-channel scales, about
    half the size of fp16; `load_tensors` gives them back as float32."""
    stored = {}
    for name, t in tensors.items():
        if int8_weights and t.is_floating_point() and t.dim() >= 2 and t.numel() >= INT8_MIN_SIZE:
            stored[name], stored[name + INT8_SCALE] = quantize_int8(t)
        else:
            stored[name] = t.detach().to(dtype) if dtype is not None and t.is_floating_point() else t.detach()
    stored = {name: t.contiguous().cpu() for name, t in stored.items()}
    save_file(stored, str(path))
    kind = INT8_WEIGHTS if int8_weights else str(dtype).removeprefix("torch.")
    return {"file": path.name, "sha256": sha256_of(path), "dtype": kind, "tensors": tensor_manifest(stored)}


def load_tensors(path: Path, expected: dict | None = None) -> dict[str, torch.Tensor]:
    """Read a safetensors file, checking it against a card's `weights` entry when given.
    Pickle formats (.pt, .pth, .bin, .ckpt, .pkl) are refused before anything is read. Weights
    stored as int8 come back as float32; other tensors as stored."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ZooError(f"{path.name}: only .safetensors weights are loaded (pickle files can run code)")
    if not path.is_file():
        raise ZooError(f"{path} is missing")
    if expected is not None and sha256_of(path) != expected["sha256"]:
        raise ZooError(f"{path.name} does not match its card (SHA-256 differs): refusing to load it")
    try:
        tensors = load_file(str(path))
    except Exception as error:  # safetensors raises its own error types for malformed headers
        raise ZooError(f"{path.name} is not a valid safetensors file ({error})") from error
    if expected is not None and tensor_manifest(tensors) != expected["tensors"]:
        raise ZooError(f"{path.name} holds other tensors than its card lists: refusing to load it")
    return dequantize_int8(tensors)


@dataclass(frozen=True)
class ModelCard:
    """A checkpoint's JSON card, as read from `<name>.json`."""

    name: str
    path: Path
    data: dict

    @property
    def config(self) -> ModelConfig:
        return ModelConfig(**self.data["config"])

    @property
    def classes(self) -> list[str]:
        return self.data["classes"]

    @property
    def weights_path(self) -> Path:
        return self.path.parent / self.data["weights"]["file"]

    def summary(self) -> str:
        metrics = self.data.get("metrics", {})
        parts = [f"{key} {value:.1%}" for key, value in metrics.items() if isinstance(value, float)]
        return f"{self.name}: {self.data.get('description', '')} ({', '.join(parts) or 'no metrics'})"


def read_card(name: str, root: Path = CHECKPOINTS) -> ModelCard:
    path = Path(root) / f"{name}.json"
    if not path.is_file():
        raise ZooError(f"no model named {name!r} in {root} (available: {', '.join(list_models(root)) or 'none'})")
    data = _card_json(path, path.stat().st_mtime_ns)
    if data.get("format") != CARD_FORMAT or data.get("name") != name:
        raise ZooError(f"{path.name} is not a format-{CARD_FORMAT} card for {name!r}")
    return ModelCard(name, path, data)


@functools.lru_cache(maxsize=64)
def _card_json(path: Path, mtime_ns: int) -> dict:
    """A card's JSON, parsed once per version of the file (cards are read on every run)."""
    return json.loads(path.read_text())


def list_models(root: Path = CHECKPOINTS) -> list[str]:
    """Names of the models whose card is in `root`, sorted."""
    names = []
    for card in sorted(Path(root).glob("*.json")):
        try:
            data = json.loads(card.read_text())
        except json.JSONDecodeError:
            continue
        if data.get("format") == CARD_FORMAT and data.get("name") == card.stem:
            names.append(card.stem)
    return names


def models_with_role(*roles: str, root: Path = CHECKPOINTS) -> list[str]:
    """The shipped models playing any of `roles`, sorted by name."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; choose from {ROLES}")
    return [name for name in list_models(root) if describe(name, root).get("role") in roles]


def describe(name: str, root: Path = CHECKPOINTS) -> dict:
    """The card of a model, as a dict (a copy: the parsed card is cached)."""
    return copy.deepcopy(read_card(name, root).data)


def entry_digest(name: str, root: Path = CHECKPOINTS) -> str:
    """What a zoo entry computes with: its weights' SHA-256, and for an inference-time wrapper
    also its memory's SHA-256 and solver options (entries sharing weights differ there)."""
    card = describe(name, root)
    memory = card.get("exfmem")
    if not memory:
        return card["weights"]["sha256"]
    options = json.dumps({k: memory[k] for k in ("sha256", *EXFMEM_OPTIONS) if k in memory}, sort_keys=True)
    return hashlib.sha256((card["weights"]["sha256"] + options).encode()).hexdigest()


def load_model(name: str, device: torch.device | str = "cpu", root: Path = CHECKPOINTS) -> nn.Module:
    """Build a zoo model from its card, load its checked weights, move it to `device`, eval mode."""
    card = read_card(name, root)
    tensors = load_tensors(card.weights_path, card.data["weights"])
    model = build_model(card.config)
    state = {key: value.to(model.state_dict()[key].dtype) if key in model.state_dict() else value
             for key, value in tensors.items() if not key.startswith("defense.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ZooError(f"{name}: the weights do not fit the card's config ({error})") from error
    memory = card.data.get("exfmem")
    if memory:
        from .defenses import ExFMem

        stored = load_tensors(Path(root) / memory["file"], memory)
        options = {key: memory[key] for key in EXFMEM_OPTIONS if key in memory}
        model = ExFMem(model, stored["audio"].float(), stored["visual"].float(), **options)
    return model.to(device).eval()


@functools.lru_cache(maxsize=32)
def cached_model(name: str, device: str = "cpu", straight_through: bool = False) -> nn.Module:
    """A zoo entry for attacks and inference only: eval mode, batch norm folded into its
    convolutions (the same function, a quarter less work per attack step), loaded once per process;
    `straight_through` makes an inference-time wrapper transparent to gradients (BPDA)."""
    model = fold_batch_norm(load_model(name, device))
    if straight_through:
        model.straight_through = True
    return model


@functools.lru_cache(maxsize=16)
def cached_term(name: str, device: str = "cpu") -> nn.Module | None:
    """`load_defense_term`, once per process."""
    return load_defense_term(name, device)


def load_defense_term(name: str, device: torch.device | str = "cpu", root: Path = CHECKPOINTS) -> nn.Module | None:
    """The training-time term of a defended model (MinSim, MaxSim, PCL with its trained centres),
    for adaptive attacks; None for a model trained without one."""
    card = read_card(name, root)
    spec = card.data.get("defense")
    from .defenses import create_term, get_defense

    if not spec or get_defense(spec["kind"]).make_term is None:  # none, or a training procedure
        return None

    tensors = load_tensors(card.weights_path, card.data["weights"])
    own = {key.removeprefix("defense."): value.float() for key, value in tensors.items() if key.startswith("defense.")}
    shape = own["centres"].shape if "centres" in own else (card.config.num_classes, 0)
    term = create_term(spec["kind"], spec["weight"], *shape)
    term.load_state_dict(own, strict=True)
    return term.to(device).eval()
