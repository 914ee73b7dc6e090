"""Evaluation throughput: attack steps per second (one forward and backward of one clip)
through the full robustness tables, from an empty results store, and what one attack step
costs against a bare forward + backward of the same model and batch, in one run.

    python benchmarks/eval_speed.py [--per-class 1] [--device cuda]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from attack_speed import measure  # noqa: E402

from avdemo.evaluation.__main__ import cached_splits, synth_data_version, zoo_clip_format  # noqa: E402
from avdemo.evaluation.engine import Engine  # noqa: E402
from avdemo.evaluation.store import ResultsStore  # noqa: E402
from avdemo.evaluation.tables import SECTIONS, evaluate  # noqa: E402
from avdemo.zoo import describe, list_models  # noqa: E402

BATCH = 45


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    args = parser.parse_args()
    started = time.perf_counter()
    clip_format = zoo_clip_format([describe(name) for name in list_models()])
    engine = Engine(cached_splits(args.per_class, clip_format, ("test",)), ResultsStore(), synth_data_version(clip_format),
                    args.device, BATCH, log=lambda *_: None)
    report = evaluate(engine, per_class=args.per_class, sections=tuple(args.sections), log=lambda *_: None)
    seconds = time.perf_counter() - started
    stamp = report["stamp"]
    print(f"full tables on {stamp['splits']} with {args.device}: {seconds:.0f} s, "
          f"{stamp['attack_steps_per_second']} attack steps/s (one forward and backward of one clip)")
    row = measure(0.25, BATCH, 10, 3, torch.device(args.device))
    print(f"PGD-10 at width 1/4, batch {BATCH}: {row['attack_s']:.2f} s = {row['ratio']:.3f} x 11 forward+backward "
          f"({row['fwd_bwd_s'] * 1000:.0f} ms each)")


if __name__ == "__main__":
    main()
