"""Evaluation throughput: clips per second through the full robustness tables, and what one
attack step costs against a bare forward + backward of the same model and batch, in one run.

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

from avdemo.evaluate import BATCH, cached_splits, evaluate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    started = time.perf_counter()
    report = evaluate(cached_splits(args.per_class, ("test",)), args.device, log=lambda *_: None, per_class=args.per_class)
    seconds = time.perf_counter() - started
    stamp = report["stamp"]
    print(f"full tables on {stamp['splits']} with {args.device}: {seconds:.0f} s, "
          f"{stamp['clips_per_second']} clips/s (each clean or attacked pass over a clip counts once)")
    row = measure(0.25, BATCH, 10, 3, torch.device(args.device))
    print(f"PGD-10 at width 1/4, batch {BATCH}: {row['attack_s']:.2f} s = {row['ratio']:.3f} x 11 forward+backward "
          f"({row['fwd_bwd_s'] * 1000:.0f} ms each)")


if __name__ == "__main__":
    main()
