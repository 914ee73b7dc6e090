"""Evaluation throughput in attack steps per second (one forward and backward of one clip):
the robustness tables from an empty results store in one process, against the ceiling (bare
PGD-10 on the base model at the zoo's clip format and the evaluation's batch) and against the
landed evaluations' stamps, in one run.

    python benchmarks/eval_speed.py [--per-class 1] [--sections table1 strongest] [--device cuda]

The landed references, converted to steps:
- v1 (`python -m avdemo.evaluate --per-class 2`, T = 1, 72 clips): 639.8 s at 13.28 clip
  evaluations per second, where a clip evaluation was one clip through one condition, clean or
  attacked. Its protocol (Table 1: 2 budgets x FGSM/PGD-10/MIM-10 x 3 modalities; Table 2: 5
  fusions x FGSM x 3; Table 3: 8 defenses x FGSM/MIM-10 x 3; curves: 5 series x 5 eps x PGD-10;
  localization: 2 budgets x 2 models x 3 modalities x PGD-10, per split) is 775 steps per clip,
  x 72 clips = 55 800 steps: 87 steps/s on a T = 1 model.
- v1 on zoo v2 (T = 4, 72 clips): 18.16 steps/s (its stamp, 4224 s).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avdemo.attacks import budget_settings, create_attack  # noqa: E402
from avdemo.evaluation.clips import cached_splits, synth_data_version, zoo_clip_format  # noqa: E402
from avdemo.evaluation.engine import Engine  # noqa: E402
from avdemo.evaluation.store import ResultsStore  # noqa: E402
from avdemo.evaluation.tables import BASE_MODEL, SECTIONS, evaluate  # noqa: E402
from avdemo.zoo import describe, list_models, load_model  # noqa: E402

BATCH = 45
LANDED = {"v1 at T = 1 (72 clips)": 55_800 / 639.8, "v1 on zoo v2 at T = 4 (72 clips)": 18.16}


def ceiling(engine: Engine, device: str, steps: int = 10) -> float:
    """Attack steps per second of bare PGD-`steps` on the base model over one batch of real test
    clips: what the evaluation would reach with no bookkeeping, store or clean passes."""
    model = load_model(BASE_MODEL, device)
    _, batch = next(iter(engine.batches("test", engine.clip_ids("test")[:BATCH])))
    waveform, frames, labels = (batch[key].to(device) for key in ("waveform", "frames", "label"))
    attack = create_attack("pgd", model, budget_settings("paper", "both"), steps=steps)
    attack(waveform[:2], frames[:2], labels[:2])  # warm-up
    timings = []
    for _ in range(3):  # the fastest of three: the ceiling
        started = time.perf_counter()
        attack(waveform, frames, labels)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - started)
    return len(labels) * steps / min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    args = parser.parse_args()
    clip_format = zoo_clip_format([describe(name) for name in list_models()])
    engine = Engine(cached_splits(args.per_class, clip_format, ("test",)), ResultsStore(), synth_data_version(clip_format),
                    args.device, BATCH, log=lambda *_: None)
    started = time.perf_counter()
    evaluate(engine, per_class=args.per_class, other_per_class=args.per_class, sections=tuple(args.sections),
             log=lambda *_: None)
    seconds = time.perf_counter() - started
    measured = engine.attack_steps / seconds
    bare = ceiling(engine, args.device)
    print(f"{' '.join(args.sections)} on {len(engine.clip_ids('test'))} test clips, {args.device}, "
          f"{torch.get_num_threads()} threads, one process: {seconds:.0f} s, {engine.attack_steps} attack steps, "
          f"{measured:.2f} steps/s")
    print(f"bare PGD-10 on {BASE_MODEL} (T = {clip_format.frames}, {clip_format.size} px, one batch of up to {BATCH} of "
          f"these clips): {bare:.2f} steps/s; "
          f"the evaluation reaches {measured / bare:.2f} of it")
    for name, reference in LANDED.items():
        print(f"landed {name}: {reference:.2f} steps/s; this run {measured / reference:.2f}x")


if __name__ == "__main__":
    main()
