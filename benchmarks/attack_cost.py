"""What does each attack cost, as a ratio to PGD at the same number of steps?

Times every registered class attack (the map attacks are left out: they need a map target) on a
shipped zoo entry (default av-concat, batch norm folded as the app and the evaluations run it) on
inputs of the shipped shape (T = 4 frames of 224 px, 65535 samples), and prints

    ratio = attack time / PGD time, at equal steps and batch

with the inputs each step sums over (MIG's path points, PAM's paths x scales + 1, TIA / TMA's
copies + 1), which is what the ratio mostly is. Attacks that take several inputs are timed at
their defaults (the public code's: MIG 20 path points, PAM 8 x 4 paths) and at the transfer
evaluation's equal-work settings (4 extra inputs per step).

    python benchmarks/attack_cost.py [--batches 1 32] [--steps 2] [--model av-concat] [--device cuda]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avdemo import FRAME_SIZE, NUM_SAMPLES  # noqa: E402
from avdemo.attacks import available_attacks, create_attack, map_attack_names  # noqa: E402
from avdemo.evaluation.transfer import EQUAL_WORK  # noqa: E402
from avdemo.zoo import cached_model  # noqa: E402


def inputs_per_step(attack, waveform: torch.Tensor, frames: torch.Tensor) -> int:
    """How many inputs one step's gradient sums over (the point itself included), at the shapes of the
    call just timed (PAM draws its audio baselines per call, at the call's shape)."""
    point = {"audio": torch.zeros_like(waveform), "visual": torch.zeros_like(frames)}
    return sum(1 for _ in attack.inputs_at(point))


def _median_seconds(function, repeats: int, device: torch.device) -> float:
    times = []
    for round_index in range(repeats + 1):  # round 0 warms up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if round_index:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--steps", type=int, default=2, help="steps of every attack (the ratio is per step)")
    parser.add_argument("--model", default="av-concat")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, choices=range(1, 101), metavar="1..100",
                        help="median of this many timings, after a warm-up run")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    model = cached_model(args.model, str(device))
    print(f"{args.model}, T = {args.frames}, {args.steps} steps, {device} "
          f"({platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__})")
    variants = [(name, {}) for name in available_attacks() if name not in map_attack_names()]
    variants += [(name, options) for name, options in EQUAL_WORK.items()]
    for batch in args.batches:
        generator = torch.Generator().manual_seed(0)
        waveform = ((torch.rand(batch, NUM_SAMPLES, generator=generator) * 2 - 1) * 0.5).to(device)
        frames = torch.rand(batch, args.frames, 3, FRAME_SIZE, FRAME_SIZE, generator=generator).to(device)
        labels = torch.randint(0, 18, (batch,), generator=generator).to(device)
        seconds = {}
        for name, options in [("pgd", {})] + variants:
            extra = {"steps": args.steps} if name not in ("fgsm", "noise") else {}
            if name in ("tia", "tma", "noise"):
                extra["seed"] = 0
            attack = create_attack(name, model, eps_audio=0.01, eps_visual=4 / 255, **extra, **options)
            label = name + (f" ({', '.join(f'{k}={v}' for k, v in options.items())})" if options else "")
            seconds[label] = (_median_seconds(lambda: attack(waveform, frames, labels), args.repeats, device),
                              inputs_per_step(attack, waveform, frames), name in ("fgsm", "noise"))
        pgd = seconds["pgd"][0]
        print(f"\nbatch {batch}: PGD-{args.steps} {pgd:.2f} s ({pgd / batch:.3f} s per clip)")
        print(f"{'attack':38s} {'inputs/step':>11s} {'s/clip':>8s} {'ratio to PGD':>13s}")
        for label, (value, inputs, single_step) in seconds.items():
            note = "  (one step: ratio to PGD-" + str(args.steps) + ")" if single_step else ""
            print(f"{label:38s} {inputs:11d} {value / batch:8.3f} {value / pgd:13.2f}{note}")


if __name__ == "__main__":
    main()
