"""Retrain the whole model zoo: `python -m avdemo.build_zoo` (`make zoo`).

In order: the asset bank and cached splits if missing; the unimodal networks from scratch
(each exported at once, since they initialise the audio-visual variants, as ImageNet
weights do in the paper); every audio-visual variant fine-tuned end to end from them; the
ExFMem memories of av-concat and av-minsim; and, for every model, reference embeddings for
the app's t-SNE. Each export writes `checkpoints/<name>.safetensors` (fp16) and a model card
measured on what ships: clean accuracy on val / test / test-heldout, PGD-10 accuracy at the
paper preset (both modalities, attacked adaptively through a model's own defense), and the
pointing game for models with both modalities. The cards record where and how long each
model trained.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

from . import __version__
from .attacks import create_attack, paper_preset
from .data.bank import BANK_VERSION, default_bank_dir, load_bank
from .data.shards import ShardDataset
from .data.synth import GENERATOR_VERSION, SynthConfig, split_dir, write_synth_split
from .defenses import collect_memory
from .evaluation import accuracy, attacked_accuracy, localization_scores
from .zoo import CARD_FORMAT, CHECKPOINTS, load_defense_term, load_model, save_tensors
from .train import RUNS, TrainConfig, model_options, train

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "zoo"
ORDER = (
    "audio-only", "visual-only", "av-concat", "av-sum", "av-film", "av-gated-sum", "av-gated-concat",
    "av-attention", "av-minsim", "av-maxsim", "av-pcl",
)
EXFMEM = {"av-concat-exfmem": "av-concat", "av-minsim-exfmem": "av-minsim"}
MEMORY_SIZE = 1024
ROBUST_PER_CLASS = 10
EMBEDDING_PER_CLASS = 12
EVAL_BATCH = 64


def _git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _first_per_class(dataset: ShardDataset, per_class: int) -> Subset:
    """The first clips of a split: AV-Synth labels cycle, so these are `per_class` of each class."""
    return Subset(dataset, range(min(len(dataset), per_class * len(dataset.classes))))


def _loader(dataset) -> DataLoader:
    return DataLoader(dataset, batch_size=EVAL_BATCH)


def ensure_data(config: SynthConfig, seed: int = 0, log=print) -> dict[str, ShardDataset]:
    """Build the bank and cache every split that is missing; returns the evaluation splits."""
    from .data.bank import build_bank

    if not (default_bank_dir() / "bank.json").is_file():
        build_bank(log=log)
    bank = load_bank()
    splits = {}
    for split in ("train", "val", "test", "test-heldout"):
        folder = split_dir(split, seed, config)
        if not (folder / "index.json").is_file():
            log(f"generating {split} ...")
            write_synth_split(bank, split, folder, seed=seed, config=config, workers=2)
        splits[split] = ShardDataset(folder)
    return splits


def measure(name: str, splits: dict[str, ShardDataset], device: str, log=print) -> dict:
    """The card's metrics for a shipped model (loaded back from `checkpoints/`)."""
    model = load_model(name, device)
    term = load_defense_term(name.removesuffix("-exfmem") if name in EXFMEM else name, device)
    metrics = {f"{split.replace('-', '_')}_accuracy": accuracy(model, _loader(splits[split]), device)
               for split in ("val", "test", "test-heldout")}
    subset = _loader(_first_per_class(splits["test"], ROBUST_PER_CLASS))
    preset = paper_preset("pgd", "both")
    metrics["pgd_paper_both_accuracy"] = attacked_accuracy(
        model, subset, lambda m: create_attack("pgd", m, extra_loss=term, **preset), device)
    if model.config.kind == "av":
        metrics.update({f"{key}_test": value for key, value in localization_scores(model, subset, device).items()})
    log(f"  {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    return metrics


def _card(name: str, description: str, config: dict, classes: list[str], weights: dict, training: dict,
          data: dict, **extra) -> dict:
    return {"format": CARD_FORMAT, "name": name, "description": description, "config": config, "classes": classes,
            "weights": weights, "training": training, "data": data, "code_version": f"{__version__}+{_git_revision()}",
            **extra}


def export_run(config: TrainConfig, run_dir: Path, data: dict, wall_seconds: float | None) -> Path:
    """Write `checkpoints/<name>.safetensors` (fp16) and a first card from a finished run."""
    from safetensors.torch import load_file

    state = json.loads((run_dir / "state.json").read_text())
    weights = save_tensors(CHECKPOINTS / f"{config.name}.safetensors", load_file(str(run_dir / "best.safetensors")))
    from .models import architecture_config

    model_config = architecture_config(config.architecture, len(state["classes"]), config.width,
                                       **model_options(config)).to_dict()
    training = {
        "recipe": state["config"],
        "epochs": state["run"]["epoch"],
        "best_epoch": state["run"]["best_epoch"],
        "train_seconds": round(state["run"]["seconds"], 1),
        "wall_seconds": round(wall_seconds, 1) if wall_seconds else None,
        "history": state["run"]["history"],
        "hardware": state["hardware"],
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    defense = {"kind": config.defense, "weight": config.defense_weight} if config.defense else None
    card = _card(config.name, config.description, model_config, state["classes"], weights, training, data, defense=defense)
    path = CHECKPOINTS / f"{config.name}.json"
    path.write_text(json.dumps(card, indent=1))
    return path


def export_exfmem(name: str, base: str, train_split: ShardDataset, device: str, data: dict) -> Path:
    """An ExFMem entry: the base model's weights plus audio and visual memories of the features
    of the first 1024 training clips (all classes alike)."""
    model = load_model(base, device)
    started = time.perf_counter()
    audio, visual = collect_memory(model, _loader(_first_per_class(train_split, MEMORY_SIZE // 18 + 1)), MEMORY_SIZE)
    memory = save_tensors(CHECKPOINTS / f"{base}.exfmem.safetensors", {"audio": audio, "visual": visual})
    memory.update({"lam": 0.1, "mix": 0.5, "tol": 8e-4, "max_iter": 2000, "clips": f"train[0:{MEMORY_SIZE}]"})
    base_card = json.loads((CHECKPOINTS / f"{base}.json").read_text())
    training = {"memory_of": base, "memory_seconds": round(time.perf_counter() - started, 1),
                "hardware": base_card["training"]["hardware"]}
    card = _card(name, f"{base} with the ExFMem feature memory (inference-time defense)", base_card["config"],
                 base_card["classes"], base_card["weights"], training, data, defense=base_card.get("defense"),
                 exfmem=memory)
    path = CHECKPOINTS / f"{name}.json"
    path.write_text(json.dumps(card, indent=1))
    return path


@torch.no_grad()
def export_embeddings(name: str, test: ShardDataset, device: str) -> dict:
    """Reference embeddings for the app's t-SNE: audio, visual and fused features of the first
    12 test clips of each class, with their labels."""
    model = load_model(name, device)
    features: dict[str, list[torch.Tensor]] = {"audio": [], "visual": [], "fused": [], "label": []}
    for batch in _loader(_first_per_class(test, EMBEDDING_PER_CLASS)):
        output = model(batch["waveform"].to(device), batch["frames"].to(device))
        for key in ("audio", "visual", "fused"):
            value = getattr(output, key)
            if value is not None:
                features[key].append(value.float().cpu())
        features["label"].append(batch["label"])
    tensors = {key: torch.cat(values) for key, values in features.items() if values}
    entry = save_tensors(CHECKPOINTS / f"{name}.embeddings.safetensors", tensors)
    entry["clips"] = f"test[0:{EMBEDDING_PER_CLASS * len(test.classes)}]"
    return entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avdemo.build_zoo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", default=None, help="retrain and re-measure only these (and their ExFMem)")
    parser.add_argument("--reuse-runs", action="store_true", help="export finished runs instead of retraining")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    CHECKPOINTS.mkdir(exist_ok=True)
    started = time.perf_counter()
    synth = SynthConfig()
    splits = ensure_data(synth)
    bank_index = load_bank().index
    data = {"dataset": "AV-Synth", "generator": GENERATOR_VERSION, "bank_version": BANK_VERSION,
            "bank_manifest_sha256": bank_index["manifest_sha256"], "seed": 0,
            "clips_per_class": {"train": 400, "val": 50, "test": 100, "test-heldout": 100},
            "frames": synth.frames, "size": synth.size}
    for name in ORDER:
        config = TrainConfig.load(CONFIGS / f"{name}.toml")
        run_dir = RUNS / name
        finished = (run_dir / "state.json").is_file() and json.loads((run_dir / "state.json").read_text())["run"]["epoch"] >= config.epochs
        wanted = args.only is None or name in args.only
        if wanted and not (args.reuse_runs and finished):
            begin = time.perf_counter()
            if run_dir.exists():
                for stale in run_dir.iterdir():
                    stale.unlink()
            train(config, run_dir, args.device)
            export_run(config, run_dir, data, time.perf_counter() - begin)
        elif not (CHECKPOINTS / f"{name}.json").is_file():
            export_run(config, run_dir, data, None)
    retrained = [name for name in ORDER if args.only is None or name in args.only]
    for name, base in EXFMEM.items():
        if base in retrained or not (CHECKPOINTS / f"{name}.json").is_file():
            export_exfmem(name, base, splits["train"], args.device, data)
            retrained.append(name)
    print("measuring the shipped models ...")
    for name in retrained:
        path = CHECKPOINTS / f"{name}.json"
        card = json.loads(path.read_text())
        card["metrics"] = measure(name, splits, args.device)
        card["embeddings"] = export_embeddings(name, splits["test"], args.device)
        path.write_text(json.dumps(card, indent=1))
    size = sum(p.stat().st_size for p in CHECKPOINTS.glob("*.safetensors"))
    print(f"zoo built in {(time.perf_counter() - started) / 60:.1f} min; checkpoints/ holds {size / 2**20:.1f} MiB of weights")


if __name__ == "__main__":
    main()
