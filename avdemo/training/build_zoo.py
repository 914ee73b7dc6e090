"""Retrain the whole model zoo: `python -m avdemo.training.build_zoo` (`make zoo`).

What it builds comes from the registries, not from lists here: every recipe in
`configs/zoo/*.toml` (trained in the order their `init_*` references require: the unimodal
networks first, since they initialise the audio-visual variants as ImageNet weights do in the
paper), and every inference-time defense of `avdemo.defenses` (an ExFMem memory of the entry
it wraps). For every model it writes reference embeddings for the app's t-SNE. Each export
writes `checkpoints/<name>.safetensors` (int8 weights with per-channel scales: about half of
fp16, for the same accuracy) and a model card measured on what ships: clean accuracy on val /
test / test-heldout, robust accuracy under PGD-10 at the paper preset and at the visible
budget (both modalities; the per-clip worst case over the objectives the model's defense
lists), and the pointing game for models with both modalities. The cards record where and how
long each model trained. `--measure NAME ...` re-measures cards without retraining.

A build survives any stop (run it again, e.g. in commands of at most 10 minutes on a lent
GPU: `timeout 590 make zoo` until it prints "zoo built"): a model whose run folder holds a
finished run of the same recipe is not trained again (only exported if its card is missing
or stale), an unfinished run of the same recipe resumes from its last epoch, a card already
measured on what ships by today's protocol is not measured again, and a measurement resumes
from the per-clip rows it left in `runs/`. `--fresh` discards the runs and starts over.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import json
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..data.bank import BANK_VERSION, default_bank_dir, load_bank
from ..data.shards import ShardDataset, first_per_class
from ..data.synth import GENERATOR_VERSION, SynthConfig, data_version, split_dir, write_synth_split
from ..defenses import BASE_MODEL, DEFENSES, collect_memory
from ..evaluation.engine import Condition, Engine, accuracy, robust_accuracy
from ..evaluation.provenance import code_version
from ..evaluation.sound_following import measure_model
from ..evaluation.store import ResultsStore
from ..measures.localization import MAP_KINDS, map_kind
from ..models import ModelConfig, architecture_config
from ..paths import ZOO_CONFIGS
from ..zoo import (CARD_FORMAT, CHECKPOINTS, INT8_WEIGHTS, entry_digest, list_models, load_model, load_tensors,
                   save_tensors, sha256_of, tensor_manifest)
from .train import RUNS, TrainConfig, hardware_description, model_options, train
from .visual_init import ensure_initialisation

MEMORY_SIZE = 1024
ROBUST_PER_CLASS = 10
SOUND_FOLLOWING_PER_CLASS = 50  # clips per class of each test split for the per-frame localization scores
EMBEDDING_PER_CLASS = 12
EVAL_BATCH = 64
# Per-clip rows of each card's measurement (one file per entry, so that builds measuring
# different entries can run side by side), kept so that a stopped build resumes mid-measurement.
CARD_RESULTS = RUNS / "card-results"
# PGD-10 on both modalities at the paper preset and at the visible budget a defense must withstand.
ROBUST_CONDITIONS = tuple(Condition.named("pgd", budget, "both") for budget in ("paper", "visible"))


def recipes() -> dict[str, TrainConfig]:
    """Every recipe in `configs/zoo/`, in an order where each model comes after those it starts from."""
    configs = {path.stem: TrainConfig.load(path) for path in sorted(ZOO_CONFIGS.glob("*.toml"))}
    ordered: dict[str, TrainConfig] = {}

    def visit(name: str, chain: tuple[str, ...] = ()) -> None:
        if name in chain:
            raise ValueError(f"the zoo recipes start from each other in a cycle: {' -> '.join((*chain, name))}")
        if name in ordered or name not in configs:
            return
        for parent in (configs[name].init_audio, configs[name].init_visual, configs[name].init_model):
            if parent:
                visit(parent, (*chain, name))
        ordered[name] = configs[name]

    for name in configs:
        visit(name)
    return ordered


def wrapper_entries() -> dict:
    """Zoo entries that are an inference-time defense over another entry (ExFMem), by name."""
    return {d.entry: d for d in DEFENSES.values() if d.wraps is not None}


def stale_wrappers() -> dict:
    """Wrapper entries to export: those without a card or memory file, whose card wraps other
    weights than the wrapped model ships now (it was retrained or exported again since), or
    whose card names another memory than the file holds."""
    stale = {}
    for entry, defense in wrapper_entries().items():
        base, own = CHECKPOINTS / f"{defense.wraps}.json", CHECKPOINTS / f"{entry}.json"
        memory = CHECKPOINTS / f"{defense.wraps}.exfmem.safetensors"
        if not base.is_file():
            continue
        card = json.loads(own.read_text()) if own.is_file() else None
        if (card is None or not memory.is_file()
                or card["weights"]["sha256"] != json.loads(base.read_text())["weights"]["sha256"]
                or card.get("exfmem", {}).get("sha256") != sha256_of(memory)):
            stale[entry] = defense
    return stale


def _loader(dataset) -> DataLoader:
    return DataLoader(dataset, batch_size=EVAL_BATCH)


def ensure_data(config: SynthConfig, seed: int = 0, log=print,
                splits: tuple[str, ...] = ("train", "val", "test", "test-heldout")) -> dict[str, ShardDataset]:
    """Build the bank and cache every split that is missing; returns the evaluation splits."""
    from ..data.bank import build_bank

    if not (default_bank_dir() / "bank.json").is_file():
        build_bank(log=log)
    bank = load_bank()
    found = {}
    for split in splits:
        folder = split_dir(split, seed, config)
        if not (folder / "index.json").is_file():
            log(f"generating {split} ...")
            write_synth_split(bank, split, folder, seed=seed, config=config, workers=2)
        found[split] = ShardDataset(folder)
    return found


def measurement_protocol() -> dict:
    """What a card's metrics rest on; a card measured under another protocol is measured again."""
    return {"robust": [f"{c.attack} {c.budget} {c.modality}" for c in ROBUST_CONDITIONS],
            "robust_clips_per_class": ROBUST_PER_CLASS, "sound_following_clips_per_class": SOUND_FOLLOWING_PER_CLASS,
            "embedding_clips_per_class": EMBEDDING_PER_CLASS}


def measured_stamp(name: str, card: dict) -> dict:
    """What an entry's card (`card`, as read from `checkpoints/`) is measured on: the entry's
    weights (and memory), its data and the protocol."""
    return {"digest": entry_digest(name, CHECKPOINTS), "data": card["data"], "protocol": measurement_protocol()}


def needs_measuring(name: str) -> bool:
    """True unless the card's metrics were measured on exactly what ships now, by today's protocol."""
    card = json.loads((CHECKPOINTS / f"{name}.json").read_text())
    stamp, measured = measured_stamp(name, card), card.get("measured", {})
    return {key: measured.get(key) for key in stamp} != stamp or "metrics" not in card


def measure(name: str, splits: dict[str, ShardDataset], device: str, log=print, clean: dict | None = None,
            store: ResultsStore | None = None) -> tuple[dict, dict, dict[str, list[dict]]]:
    """The card's metrics for a shipped model (loaded back from `checkpoints/`), the details
    of its robust accuracy (each objective's number and how many clips), and its clean rows
    per split (none when `clean` is given). `clean`: the card's clean metrics to keep (same
    weights, only the attack protocol changed); `store`: per-clip rows already measured are
    read from it, not recomputed."""
    store = store if store is not None else ResultsStore()
    data = f"card {data_version(splits['val'].root)}"
    engine = Engine({split: splits[split] for split in ("val", "test", "test-heldout")}, store, data, device,
                    EVAL_BATCH, log)
    clean_rows = {} if clean else {split: engine.clean(name, split) for split in ("val", "test", "test-heldout")}
    metrics = dict(clean) if clean else {f"{split.replace('-', '_')}_accuracy": accuracy(rows)
                                         for split, rows in clean_rows.items()}
    robust = Engine({"test": first_per_class(splits["test"], ROBUST_PER_CLASS)}, store, data, device, EVAL_BATCH, log)
    details = {}
    for condition in ROBUST_CONDITIONS:
        key = f"pgd_{condition.budget}_both"
        by_objective = robust.attacked([name], condition, "test")[name]
        metrics[f"robust_{key}_accuracy"] = robust_accuracy(by_objective)
        details[key] = {
            "attack": "PGD-10", "budget": f"{condition.budget}, both modalities", "clips": len(robust.clip_ids("test")),
            "split": f"test, first {ROBUST_PER_CLASS} clips per class", "worst_case": metrics[f"robust_{key}_accuracy"],
            "objectives": {objective: accuracy(rows) for objective, rows in by_objective.items()}}
    clean_test = [] if clean else robust.clean(name, "test")  # pointing on the same 180 clips
    if clean_test and "hit" in clean_test[0]:
        frames = sum(len(row["hit"]) for row in clean_test)
        metrics["pointing_game_test"] = sum(sum(row["hit"]) for row in clean_test) / frames
        metrics["distractor_peak_test"] = sum(sum(row["distractor"]) for row in clean_test) / frames
    log(f"  {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    return metrics, details, clean_rows


def synth_config(config: TrainConfig) -> SynthConfig:
    """The clip format a recipe trains and is measured on."""
    return SynthConfig(frames=config.frames, size=config.size)


def prepare_data(config: TrainConfig, log=print) -> dict:
    """Make sure a recipe's data exists (AV-Synth: the bank and every split in its clip format)
    and return what its card records about it."""
    if config.dataset != "av-synth":
        return {"dataset": config.dataset, "shards": config.shards, "frames": config.frames, "size": config.size}
    synth = synth_config(config)
    splits = ensure_data(synth, log=log)
    return {"dataset": "AV-Synth", "generator": GENERATOR_VERSION, "bank_version": BANK_VERSION,
            "bank_manifest_sha256": splits["val"].index["source"]["bank"], "seed": 0,
            "clips_per_class": {"train": 400, "val": 50, "test": 100, "test-heldout": 100},
            "frames": synth.frames, "size": synth.size}


def data_splits(name: str) -> dict[str, ShardDataset]:
    """The cached splits in the clip format of a shipped entry's card (generated if missing)."""
    data = json.loads((CHECKPOINTS / f"{name}.json").read_text())["data"]
    return _splits_in_format(SynthConfig(frames=data["frames"], size=data["size"]))


@functools.lru_cache(maxsize=4)
def _splits_in_format(synth: SynthConfig) -> dict[str, ShardDataset]:
    """`ensure_data` once per clip format in a build (it loads the bank to check every split)."""
    return ensure_data(synth)


def _recipe(config: TrainConfig) -> dict:
    """A recipe as its run's state.json stores it (JSON types: tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _with_defaults(recipe: dict) -> dict:
    """A run's recipe as today's TrainConfig reads it: a setting added since the run was made
    takes its default, which (by construction of a new setting) is what the run trained with."""
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    return _recipe(TrainConfig(**{key: tuple(value) if isinstance(value, list) else value
                                  for key, value in recipe.items() if key in known}))


def _recipe_of(run_dir: Path) -> dict | None:
    state = run_dir / "state.json"
    return json.loads(state.read_text()) if state.is_file() else None


def build_model_entry(config: TrainConfig, fresh: bool, device: str, log=print) -> None:
    """Train (or resume) one recipe and export it; a finished run of the same recipe is only
    exported again when the shipped card is missing, came from another run or stores its
    weights in another format."""
    run_dir = RUNS / config.name
    state = _recipe_of(run_dir)
    if state is not None and (fresh or _with_defaults(state["config"]) != _recipe(config)):
        log(f"{config.name}: discarding the earlier run ({'--fresh' if fresh else 'its recipe changed'})")
        for stale in run_dir.iterdir():
            stale.unlink()
        state = None
    card_path = CHECKPOINTS / f"{config.name}.json"
    finished = state is not None and state["run"]["epoch"] >= config.epochs
    if finished:
        card = json.loads(card_path.read_text()) if card_path.is_file() else {}
        training = card.get("training", {})
        if (training.get("recipe") == state["config"] and training.get("history") == state["run"]["history"]
                and card.get("weights", {}).get("dtype") == INT8_WEIGHTS):
            log(f"{config.name}: finished and shipped, nothing to do")
            return
    data = prepare_data(config, log)
    if finished:
        export_run(config, run_dir, data, None)
        return
    for reference in (config.init_audio, config.init_visual, config.init_model):
        if reference:
            ensure_initialisation(reference, log)
    begin = time.perf_counter()
    train(config, run_dir, device, resume=state is not None, log=log)
    export_run(config, run_dir, data, time.perf_counter() - begin)


def _card(name: str, description: str, config: dict, classes: list[str], weights: dict, training: dict,
          data: dict, **extra) -> dict:
    return {"format": CARD_FORMAT, "name": name, "description": description, "config": config, "classes": classes,
            "weights": weights, "training": training, "data": data, "code_version": code_version(),
            **extra}


def export_run(config: TrainConfig, run_dir: Path, data: dict, wall_seconds: float | None) -> Path:
    """Write `checkpoints/<name>.safetensors` (int8) and a first card from a finished run."""
    from safetensors.torch import load_file

    state = json.loads((run_dir / "state.json").read_text())
    weights = save_tensors(CHECKPOINTS / f"{config.name}.safetensors", load_file(str(run_dir / "best.safetensors")),
                           int8_weights=True)
    model_config = architecture_config(config.architecture, len(state["classes"]), config.width,
                                       **model_options(config)).to_dict()
    training = {
        "recipe": state["config"],
        "epochs": state["run"]["epoch"],
        "best_epoch": state["run"]["best_epoch"],
        "train_seconds": round(state["run"]["seconds"], 1),
        "wall_seconds": round(wall_seconds, 1) if wall_seconds else None,
        "history": state["run"]["history"],
        "validations": state["run"].get("validations", []),
        "procedure": state.get("procedure"),
        "hardware": state["hardware"],
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    defense = {"kind": config.defense, "weight": config.defense_weight} if config.defense else None
    card = _card(config.name, config.description, model_config, state["classes"], weights, training, data,
                 role=config.role, defense=defense, map=map_card(config, ModelConfig(**model_config)),
                 comparison=comparison_card(config))
    path = CHECKPOINTS / f"{config.name}.json"
    path.write_text(json.dumps(card, indent=1))
    return path


def map_card(recipe: TrainConfig, model_config: ModelConfig) -> dict | None:
    """What the card says about the model's localization map: which kind it is and, for a
    learned correspondence, the training terms that shaped it (None for a unimodal model)."""
    kind = map_kind(model_config)
    if kind is None:
        return None
    card = {"kind": kind, "meaning": MAP_KINDS[kind]}
    if kind == "correspondence":
        card["trained_with"] = {"contrastive_weight": recipe.correspondence_weight,
                                "mosaic_weight": recipe.mosaic_weight, "temperature": recipe.temperature}
    return card


def comparison_card(config: TrainConfig) -> dict | None:
    """For a fusion, a training-time defense or an audio-visual model on other backbones: what its
    recipe changes from the base model's (the paper's comparisons hold everything else equal),
    None for other entries."""
    audio_visual_backbone = config.role == "backbone" and config.architecture.startswith("av-")
    if not (config.role in ("fusion", "defense") or audio_visual_backbone) or config.name == BASE_MODEL:
        return None
    base = dataclasses.asdict(TrainConfig.load(ZOO_CONFIGS / f"{BASE_MODEL}.toml"))
    own = dataclasses.asdict(config)
    differs = {key: own[key] for key in own if own[key] != base[key] and key not in ("name", "description", "role")}
    return {"base": BASE_MODEL, "differs_in": json.loads(json.dumps(differs)),
            "shares": f"every other setting of {BASE_MODEL}'s recipe (data, T, initialisation, schedule, the "
                      "localization terms that train the map)"}


def export_wrapper(defense, train_split: ShardDataset | None, device: str) -> Path:
    """An inference-time defense's entry (ExFMem): the wrapped entry's weights, audio and visual
    memories of the features of its first 1024 training clips (all classes alike; one file
    shared by every wrapper of the same entry), and the defense's solver options. The memory
    is collected again when `train_split` is given (the wrapped entry was retrained) or missing."""
    base = defense.wraps
    memory_path = CHECKPOINTS / f"{base}.exfmem.safetensors"
    base_card = json.loads((CHECKPOINTS / f"{base}.json").read_text())
    started = time.perf_counter()
    if train_split is not None or not memory_path.is_file():
        model = load_model(base, device)
        audio, visual = collect_memory(model, _loader(first_per_class(train_split, MEMORY_SIZE // 18 + 1)), MEMORY_SIZE)
        save_tensors(memory_path, {"audio": audio, "visual": visual})
    memory = {"file": memory_path.name, "sha256": sha256_of(memory_path), "dtype": "float16",
              "tensors": tensor_manifest(load_tensors(memory_path)), **defense.wrapper_options,
              "clips": f"train[0:{MEMORY_SIZE}]"}
    training = {"memory_of": base, "memory_seconds": round(time.perf_counter() - started, 1),
                "hardware": base_card["training"]["hardware"]}
    card = _card(defense.entry, f"{base} with the {defense.name} feature memory (inference-time defense)",
                 base_card["config"], base_card["classes"], base_card["weights"], training, base_card["data"], role="defense",
                 defense=base_card.get("defense"), map=base_card.get("map"), exfmem=memory)
    path = CHECKPOINTS / f"{defense.entry}.json"
    path.write_text(json.dumps(card, indent=1))
    return path


@torch.no_grad()
def export_embeddings(name: str, test: ShardDataset, device: str) -> dict:
    """Reference embeddings for the app's t-SNE: audio, visual and fused features of the first
    12 test clips of each class, with their labels."""
    model = load_model(name, device)
    features: dict[str, list[torch.Tensor]] = {"audio": [], "visual": [], "fused": [], "label": []}
    for batch in _loader(first_per_class(test, EMBEDDING_PER_CLASS)):
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
    parser = argparse.ArgumentParser(prog="python -m avdemo.training.build_zoo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", default=None, help="retrain and re-measure only these (and their wrappers)")
    parser.add_argument("--fresh", action="store_true", help="discard earlier runs of the recipes built and train anew")
    parser.add_argument("--measure", nargs="+", default=None, metavar="NAME",
                        help="only re-measure these shipped entries' cards (no training; first writes the cards of "
                             "registered wrapper defenses whose memory file exists)")
    parser.add_argument("--robust-only", action="store_true",
                        help="with --measure: keep the cards' clean metrics, re-measure only robust accuracy")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    CHECKPOINTS.mkdir(exist_ok=True)
    started = time.perf_counter()
    if args.measure:
        for entry, defense in wrapper_entries().items():  # a new wrapper of an existing memory needs no training
            if not (CHECKPOINTS / f"{entry}.json").is_file() and (CHECKPOINTS / f"{defense.wraps}.exfmem.safetensors").is_file():
                export_wrapper(defense, None, args.device)
        remeasure(args.measure, args.device, args.robust_only)
        return
    configs = recipes()
    wanted = [name for name in configs if args.only is None or name in args.only]
    for name in wanted:
        build_model_entry(configs[name], args.fresh, args.device)
    for base in sorted({defense.wraps for defense in stale_wrappers().values() if defense.wraps in wanted}):
        # The memory is collected once, then every wrapper of the same model is exported over it.
        wrappers = [defense for defense in wrapper_entries().values() if defense.wraps == base]
        for index, defense in enumerate(wrappers):
            export_wrapper(defense, data_splits(base)["train"] if index == 0 else None, args.device)
    wanted += [entry for entry, defense in wrapper_entries().items() if defense.wraps in wanted]
    entries = wanted if args.only else list_models(CHECKPOINTS)
    remeasure([name for name in entries if needs_measuring(name)], args.device)
    size = sum(p.stat().st_size for p in CHECKPOINTS.glob("*.safetensors"))
    print(f"zoo built in {(time.perf_counter() - started) / 60:.1f} min; checkpoints/ holds {size / 2**20:.1f} MiB of weights")


def remeasure(names: list[str], device: str, robust_only: bool = False) -> None:
    """Measure shipped entries again, each on the splits of its own clip format, and rewrite
    their cards' metrics and t-SNE embeddings (with `robust_only`, only the robust accuracy of
    cards that already have clean metrics). Each card is stamped with what it was measured on;
    per-clip rows go to `runs/card-results/`, so a stopped measurement resumes where it stopped
    and two builds may measure different entries at once."""
    print(f"measuring {len(names)} shipped entries: {', '.join(names)}", flush=True)
    for name in names:
        started = time.perf_counter()
        store = ResultsStore(CARD_RESULTS / f"{name}.jsonl.gz")
        path = CHECKPOINTS / f"{name}.json"
        card = json.loads(path.read_text())
        splits = data_splits(name)
        keep = {k: v for k, v in card.get("metrics", {}).items() if "robust" not in k} if robust_only else None
        card["metrics"], card["robustness"], clean_rows = measure(name, splits, device, clean=keep or None, store=store)
        if not keep:
            card["embeddings"] = export_embeddings(name, splits["test"], device)
            card["sound_following"] = measure_model(name, splits, SOUND_FOLLOWING_PER_CLASS, device, clean_rows)
        card["measured"] = {**measured_stamp(name, card), "seconds": round(time.perf_counter() - started, 1),
                            "hardware": hardware_description(device)}
        path.write_text(json.dumps(card, indent=1))
        print(f"  {name} measured in {(time.perf_counter() - started) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
