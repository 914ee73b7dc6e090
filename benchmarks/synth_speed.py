"""AV-Synth generation speed: clips per second on one core, per clip format.

Generation is single-threaded numpy/OpenCV work, so one process measures one core; DataLoader
workers scale it by the number of cores they get. Compare with training throughput (about
29 clips/s for a width-1/4 model at 224 px on this 2-core CPU) to decide whether to
pre-generate training clips (`python -m avdemo.data generate train`).

    python benchmarks/synth_speed.py [--bank DIR] [--clips 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avdemo.data.bank import load_bank  # noqa: E402
from avdemo.data.synth import SynthConfig, generate_clip, plan_clip, render_clip  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bank", type=Path, default=None)
    parser.add_argument("--clips", type=int, default=200)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    start = time.perf_counter()
    bank = load_bank(args.bank)
    print(f"bank loaded in {time.perf_counter() - start:.2f} s ({bank.root})")
    print(f"{'frames':>6} {'size':>5} {'split':>13} {'clips/s/core':>13} {'plan ms':>8} {'render ms':>10}")
    for frames, size, split in ((1, 224, "train"), (1, 160, "train"), (4, 224, "train"), (1, 224, "test-heldout")):
        config = SynthConfig(frames=frames, size=size)
        generate_clip(bank, split, 0, config=config)
        plan_time = render_time = 0.0
        for index in range(args.clips):
            begin = time.perf_counter()
            plan = plan_clip(bank, split, index, config=config)
            middle = time.perf_counter()
            render_clip(bank, plan, config)
            plan_time += middle - begin
            render_time += time.perf_counter() - middle
        total = plan_time + render_time
        print(f"{frames:>6} {size:>5} {split:>13} {args.clips / total:>13.1f} "
              f"{1000 * plan_time / args.clips:>8.2f} {1000 * render_time / args.clips:>10.2f}")


if __name__ == "__main__":
    main()
