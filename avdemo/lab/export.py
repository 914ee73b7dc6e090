"""The adversarial input, taken away intact.

The page's mp4 is H.264 + AAC, whose compression destroys a perturbation of 2/255; a researcher
needs the exact arrays the model was fooled by. A bundle is two files: `adversarial.npz` (the
exact adversarial and clean inputs) and `run.json` (the settings, the entry's weights SHA-256,
the code version, what the model said, and the command that makes the run again:
`python -m avdemo.lab.replay run.json`). A run crafted on another model records that model
and its weights' SHA-256 (`craft_on`); a masked clip (no attack) records its masking settings
(`masking`) and its arrays are the masked input.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from ..attacks import AttackSettings
from ..evaluation.provenance import code_version
from ..paths import ROOT
from ..zoo import entry_digest, sha256_of
from .analysis import Analysis

ARRAYS = "adversarial.npz"
RECORD = "run.json"
INPUT_KINDS = ("video", "image", "sound")


def file_record(path: str | Path | None) -> dict | None:
    """Where an input file came from: its path inside the repository (a shipped example) or its
    bare name (an upload, which the replay has to be given again), and its SHA-256."""
    if not path:
        return None
    path = Path(path).resolve()
    shipped = path.is_relative_to(ROOT)
    return {"path": str(path.relative_to(ROOT)) if shipped else path.name, "shipped": shipped,
            "sha256": sha256_of(path)}


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the adversarial arrays' bytes: equal digests mean bit-identical inputs."""
    digest = hashlib.sha256()
    for name in ("adversarial_frames", "adversarial_waveform"):
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def bundle_arrays(analysis: Analysis) -> dict[str, np.ndarray]:
    """adversarial_frames `(T, S, S, 3)` float32 in [0, 1] and adversarial_waveform `(L,)`
    float32 in [-1, 1], exactly as the model received them; the clean frames `(T, S, S, 3)`
    uint8 and waveform `(L,)` float32 beside them; the sample rate."""
    return {"adversarial_frames": analysis.adversarial_frames.astype(np.float32),
            "adversarial_waveform": analysis.adversarial_waveform.astype(np.float32),
            "clean_frames": analysis.clip.frames, "clean_waveform": analysis.clip.waveform.astype(np.float32),
            "sample_rate": np.array(analysis.clip.sample_rate)}


def settings_from_record(values: dict | None) -> AttackSettings | None:
    """The AttackSettings a record stores (JSON turns per-channel budgets into lists); None for a masked clip."""
    if values is None:
        return None
    return AttackSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def run_record(analysis: Analysis, model: str, defense: str, attack: str, settings: AttackSettings | None,
               target: str | None, inputs: dict[str, str | None], arrays: dict[str, np.ndarray]) -> dict:
    """What a run was asked and what it gave, enough to make it again and check it (`settings`
    None for a masked clip, which has none)."""
    files = {kind: file_record(inputs.get(kind)) for kind in INPUT_KINDS}
    command = ["python -m avdemo.lab.replay", RECORD]
    command += [f"--{kind} {record['path']}" for kind, record in files.items() if record and not record["shipped"]]
    surrogate, masking = analysis.surrogate, analysis.masking
    return {
        "code": code_version(),
        "model": model, "defense": defense, "entry": analysis.model_name, "entry_sha256": entry_digest(analysis.model_name),
        "craft_on": surrogate.model_name if surrogate else None,
        "craft_on_sha256": entry_digest(surrogate.model_name) if surrogate else None,
        "attack": attack, "settings": dataclasses.asdict(settings) if settings else None, "target": target,
        "region": analysis.region,
        "masking": {"share": masking.share, "mode": masking.mode, "seed": masking.seed} if masking else None,
        "inputs": {kind: record for kind, record in files.items() if record},
        "label_attacked_away_from": analysis.classes[analysis.label] if not analysis.targeted and not masking else None,
        "clean_prediction": analysis.classes[int(analysis.clean_probabilities.argmax())],
        "attacked_prediction": analysis.classes[int(analysis.attacked_probabilities.argmax())],
        "winning_objective": analysis.winner,
        "arrays": ARRAYS, "arrays_sha256": arrays_digest(arrays),
        "command": " ".join(command),
    }


def write_bundle(analysis: Analysis, folder: Path, model: str, defense: str, attack: str, settings: AttackSettings | None,
                 target: str | None, inputs: dict[str, str | None]) -> list[Path]:
    """Write `adversarial.npz` and `run.json` into `folder`; returns both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = bundle_arrays(analysis)
    np.savez(folder / ARRAYS, **arrays)  # uncompressed: 0.02 s for 3.2 MiB; zlib took 0.55 s (on 2 cores) to save 43 %
    record = run_record(analysis, model, defense, attack, settings, target, inputs, arrays)
    (folder / RECORD).write_text(json.dumps(record, indent=1) + "\n")
    return [folder / ARRAYS, folder / RECORD]


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path) as stored:
        return {name: stored[name] for name in stored.files}


def model_inputs(arrays: dict[str, np.ndarray], device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The bundle's adversarial input as a batch of one: waveform `(1, L)` in [-1, 1], frames
    `(1, T, 3, S, S)` in [0, 1], as every zoo model takes them."""
    waveform = torch.from_numpy(arrays["adversarial_waveform"]).to(device).unsqueeze(0)
    frames = torch.from_numpy(arrays["adversarial_frames"]).to(device).permute(0, 3, 1, 2).unsqueeze(0)
    return waveform, frames
