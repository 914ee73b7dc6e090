"""Does the map follow the sound? Clean localization scores of a model with a map, beyond the
pointing game of the card's robust subset:

- pointing and distractor-peak rates per frame, over every frame of the clips measured, in
  and out of distribution;
- the swap test: the frames of a clip with a visible silent distractor, played with the sound
  of another clip of the distractor's class; the map follows the sound when its peak lies on
  that distractor in most of the clip's frames;
- accuracy on the clips without a distractor (what a visual-only model can be asked for);
- the app's shipped examples, decoded from their mp4 files as the app decodes them: right
  when the class is right and the peak lies in the sounding object's box in most frames.

`python -m avdemo.evaluation.sound_following av-attention av-concat [--per-class 50]` prints
them and writes `reports/sound_following.json`.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..data.shards import first_per_class
from ..measures.localization import distractor_hits, localization_maps, pointing_game, upsample
from ..paths import ROOT

BATCH = 32


def _predict(model: torch.nn.Module, waveform: torch.Tensor, frames: torch.Tensor, device: str):
    """Labels `(B,)` and peak-scored maps `(B, T, S, S)` (None for a model without a map)."""
    with torch.no_grad():
        output = model(waveform.to(device), frames.to(device))
        has_map = output.audio is not None and output.visual_map is not None
        maps = upsample(localization_maps(output), frames.shape[-1]).cpu().numpy() if has_map else None
    return output.logits.argmax(-1).cpu(), maps


def _frame_scores(maps: np.ndarray, boxes: torch.Tensor) -> np.ndarray:
    """Hits `(B, T)` of maps `(B, T, S, S)` in boxes `(B, T, 4)`."""
    return pointing_game(maps.reshape(-1, *maps.shape[2:]), boxes.flatten(0, 1).numpy()).reshape(maps.shape[:2])


def _without_distractor(batch: dict) -> np.ndarray:
    """Per clip of a batch: True when no frame shows a silent distractor."""
    return torch.isnan(batch["distractor_box"][:, 0, :, 0]).all(dim=1).numpy()


def clean_scores(correct: np.ndarray, alone: np.ndarray, hits: np.ndarray | None = None,
                 on_distractor: np.ndarray | None = None) -> dict:
    """Accuracy overall and on clips without a distractor; with a map, pointing and the
    distractor-peak rate per frame, each beside the count it rests on. correct, alone `(N,)`
    bool per clip; hits, on_distractor `(N, T)` bool per frame or None."""
    result = {"clips": len(correct), "accuracy": float(correct.mean()),
              "clips_without_distractor": int(alone.sum()), "accuracy_without_distractor": float(correct[alone].mean())}
    if hits is not None:
        result.update(frames=int(hits.size), pointing=float(hits.mean()), distractor_peak=float(on_distractor.mean()))
    return result


def measure_clean(model: torch.nn.Module, dataset: Dataset, device: str = "cpu") -> dict:
    """`clean_scores` of a model on every clip of `dataset`."""
    correct, alone, hits, on_distractor = [], [], [], []
    for batch in DataLoader(dataset, batch_size=BATCH):
        predicted, maps = _predict(model, batch["waveform"], batch["frames"], device)
        correct.append((predicted == batch["label"]).numpy())
        alone.append(_without_distractor(batch))
        if maps is not None:
            hits.append(_frame_scores(maps, batch["box"]))
            flat = maps.reshape(-1, *maps.shape[2:])
            on_distractor.append(distractor_hits(flat, batch["distractor_box"].flatten(0, 1).numpy()).reshape(maps.shape[:2]))
    return clean_scores(np.concatenate(correct), np.concatenate(alone), *(
        (np.concatenate(hits), np.concatenate(on_distractor)) if hits else ()))


def scores_from_rows(rows: list[dict], dataset: Dataset) -> dict:
    """`clean_scores` from the clean rows the evaluation engine already measured on the clips
    of `dataset` (in clip order; rows with per-frame "hit" and "distractor" where the model has
    a map), without running the model again."""
    alone = np.concatenate([_without_distractor(batch) for batch in DataLoader(dataset, batch_size=BATCH)])
    if len(rows) != len(alone):
        raise ValueError(f"{len(rows)} rows for {len(alone)} clips")
    correct = np.array([row["correct"] for row in rows])
    if "hit" not in rows[0]:
        return clean_scores(correct, alone)
    return clean_scores(correct, alone, np.array([row["hit"] for row in rows]), np.array([row["distractor"] for row in rows]))


def measure_swap(model: torch.nn.Module, dataset: Dataset, device: str = "cpu") -> dict:
    """The swap test on every clip of `dataset` with a distractor whose class has another clip
    in `dataset` to lend its sound: the share of clips whose peak moves onto that distractor in
    most frames, and (for comparison) the share whose peak stays on the original source."""
    lender: dict[int, torch.Tensor] = {}  # the sound of the first clip of each class
    for index in range(len(dataset)):
        sample = dataset[index]
        lender.setdefault(int(sample["label"]), sample["waveform"])
    moved, stayed = [], []
    for start in range(0, len(dataset), BATCH):
        samples = [dataset[i] for i in range(start, min(start + BATCH, len(dataset)))]
        usable = [s for s in samples if not torch.isnan(s["distractor_box"][0, 0, 0]) and int(s["distractor_label"][0]) in lender]
        if not usable:
            continue
        waveform = torch.stack([lender[int(s["distractor_label"][0])] for s in usable])
        frames = torch.stack([s["frames"] for s in usable])
        _, maps = _predict(model, waveform, frames, device)
        if maps is None:
            raise ValueError("the swap test needs a model with a localization map")
        steps = maps.shape[1]
        moved.append(_frame_scores(maps, torch.stack([s["distractor_box"][:, 0] for s in usable])).sum(1) > steps / 2)
        stayed.append(_frame_scores(maps, torch.stack([s["box"] for s in usable])).sum(1) > steps / 2)
    moved, stayed = np.concatenate(moved), np.concatenate(stayed)
    return {"clips": len(moved), "followed": float(moved.mean()), "stayed_on_source": float(stayed.mean())}


def measure_examples(model: torch.nn.Module, classes: list[str], frames: int, device: str = "cpu") -> dict:
    """Per shipped example (`assets/examples/*.mp4` with its sidecar): predicted class, frames
    whose peak is in the box, and whether it is right (class right, peak in the box in most
    frames); plus how many are right."""
    from ..data.examples import SCENARIOS
    from ..data.truth import read_ground_truth
    from ..media import decode_clip
    from ..paths import EXAMPLES

    per_example = {}
    for scenario in SCENARIOS:
        video = EXAMPLES / f"{scenario.name}.mp4"
        clip = decode_clip(video, num_frames=frames)
        truth = read_ground_truth(video, clip.frame_times, clip.frames.shape[1])
        predicted, maps = _predict(model, *clip.model_inputs(), device)
        label = classes[int(predicted[0])]
        hits = int(_frame_scores(maps, torch.from_numpy(truth.box)[None]).sum()) if maps is not None else None
        per_example[scenario.name] = {"predicted": label, "label": truth.label, "frames_in_box": hits, "frames": frames,
                                      "right": label == truth.label and hits is not None and hits > frames / 2}
    return {"right": sum(e["right"] for e in per_example.values()), "examples": len(per_example), "each": per_example}


def measure_model(name: str, splits: dict[str, Dataset], per_class: int, device: str = "cpu",
                  clean_rows: dict[str, list[dict]] | None = None) -> dict:
    """Clean scores on `per_class` clips per class of test and test-heldout; for a model with a
    map, the swap test in distribution and the shipped examples. `clean_rows`: the evaluation
    engine's clean rows of each whole split (clip order), read instead of running the model."""
    from ..zoo import load_model, read_card

    model = load_model(name, device).eval()
    result = {}
    for split in ("test", "test-heldout"):
        subset = first_per_class(splits[split], per_class)
        result[split] = (scores_from_rows(clean_rows[split][:len(subset)], subset) if clean_rows
                         else measure_clean(model, subset, device))
    if "pointing" in result["test"]:
        result["swap_test"] = measure_swap(model, first_per_class(splits["test"], per_class), device)
        card = read_card(name)
        result["examples"] = measure_examples(model, card.classes, card.data["data"]["frames"], device)
    return result


def main(argv: list[str] | None = None) -> None:
    from ..training.build_zoo import data_splits

    parser = argparse.ArgumentParser(prog="python -m avdemo.evaluation.sound_following", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--per-class", type=int, default=50, help="clips per class of each test split (at most 100)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    path = ROOT / "reports" / "sound_following.json"
    report = json.loads(path.read_text()) if path.is_file() else {}
    for name in args.models:
        started = time.perf_counter()
        report[name] = measure_model(name, data_splits(name), args.per_class, args.device)
        report[name]["seconds"] = round(time.perf_counter() - started, 1)
        print(name, json.dumps(report[name]))
    path.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
