"""The clips the evaluation measures: the zoo's clip format and the cached AV-Synth splits in it."""

from __future__ import annotations

from torch.utils.data import Dataset

from ..data.shards import ShardDataset, first_per_class
from ..data.synth import FRAME_SIZE, SynthConfig, data_version, split_dir


def zoo_clip_format(cards: list[dict]) -> SynthConfig:
    """The AV-Synth clip format (frames T, size) the zoo's entries (their cards) were trained
    and measured on; the evaluation compares them on the same clips, so a zoo that mixes
    formats is refused."""
    formats = {(card["data"].get("frames", 1), card["data"].get("size", FRAME_SIZE)) for card in cards}
    if len(formats) != 1:
        raise SystemExit(f"the zoo's entries were trained on different clip formats {sorted(formats)} (T, size): "
                         "retrain the older ones on today's recipes (`make zoo`) before evaluating")
    frames, size = formats.pop()
    return SynthConfig(frames=frames, size=size)


def synth_data_version(config: SynthConfig, seed: int = 0) -> str:
    """The AV-Synth data version that names clips in the store: generator, bank, format, seed."""
    return data_version(split_dir("test", seed, config))


def cached_splits(per_class: int | None, config: SynthConfig, splits=("test", "test-heldout")) -> dict[str, Dataset]:
    """The first `per_class` clips of each class of the cached AV-Synth splits (all with None)."""
    folders = {split: split_dir(split, 0, config) for split in splits}
    missing = [str(folder) for folder in folders.values() if not (folder / "index.json").is_file()]
    if missing:
        raise SystemExit(f"no cached clips in {', '.join(missing)}: run `python -m avdemo.data splits "
                         f"--frames {config.frames} --size {config.size}` (or `make zoo`) first")
    datasets = {split: ShardDataset(folder) for split, folder in folders.items()}
    return {split: dataset if per_class is None else first_per_class(dataset, per_class)
            for split, dataset in datasets.items()}
