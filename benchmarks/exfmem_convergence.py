"""Does ExFMem's sparse coding solve its Lasso, and what does solving it cost an attack?

For each shipped memory bank (av-concat, av-minsim) and modality (audio, visual), encodes the
real clean test features shipped with the zoo (`<model>.embeddings.safetensors`, 216 clips)
one clip at a time (batch 1, as the app and its attacks do), with

- reference: ISTA with the reference code's absolute stopping rule (the published defense);
- fista:     FISTA with adaptive restart and the relative stopping rule, at its defaults;
- long:      FISTA for a fixed 20,000 iterations, the optimum, on the first 64 clips only (the
             Lasso gaps below are measured on those 64 clips).

Per solver it prints and writes to reports/exfmem_convergence.json: iterations, mean non-zeros
of the codes (of 1024), mean Lasso objective 0.5 ||x - h M||^2 + lam ||h||_1, its gap to the
long run in % (mean over the subset, and the worst clip), the mean relative change of the
features ||f' - f|| / ||f|| the memory makes, how far the output f' is from the long run's,
and the time of one forward + backward through the memory at batch 1, from which the PGD-10
overhead is estimated as 10 x (audio + visual). A budget sweep (FISTA cut at a fixed iteration
count) shows what cheaper settings give up.

    python benchmarks/exfmem_convergence.py [--subset 64] [--long 20000] [--workers 2] [--threads 1]

The untimed encodings run in `--workers` processes (one thread each: at batch 1 the products
are too small to split); the timings run after them, alone, on `--threads` intra-op threads,
and the load average is recorded beside them, as a shared machine slows everything down.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avdemo.defenses.exfmem import (  # noqa: E402
    FISTA_MAX_ITERATIONS,
    LAMBDA,
    MAX_ITERATIONS,
    MIX,
    RELATIVE_TOLERANCE,
    TOLERANCE,
    FeatureMemory,
    fista,
    lasso_objective,
    lipschitz_constant,
    solve_lasso,
)

BANKS = ("av-concat", "av-minsim")
MODALITIES = ("audio", "visual")
SOLVERS = ("reference", "fista")
BUDGETS = (100, 300, 1000)
PGD_STEPS = 10


def _denoised(x: torch.Tensor, codes: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    return MIX * (codes @ memory) + (1 - MIX) * x


def _relative(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).norm(dim=1) / b.norm(dim=1)


def _gaps(objective: torch.Tensor, optimum: torch.Tensor) -> tuple[float, float]:
    """The gap of the mean objective to the optimum's, and the worst clip's, in %."""
    return (100 * (objective.mean() / optimum.mean() - 1)).item(), (100 * (objective / optimum - 1)).max().item()


def _summary(x, codes, memory, iterations, subset, optimum_objective, optimum_features) -> dict:
    objective = lasso_objective(x, codes, memory, LAMBDA)
    features = _denoised(x, codes, memory)
    gap, worst = _gaps(objective[:subset], optimum_objective)
    iterations = torch.tensor(iterations, dtype=torch.float64)
    return {
        "clips": len(x),
        "iterations_mean": iterations.mean().item(),
        "iterations_max": int(iterations.max()),
        "nonzeros_mean": (codes != 0).sum(dim=1).double().mean().item(),
        "objective_mean": objective[:subset].mean().item(),
        "objective_mean_all_clips": objective.mean().item(),
        "gap_pct": gap,
        "gap_worst_clip_pct": worst,
        "feature_change": _relative(features, x).mean().item(),
        "distance_to_long_output": _relative(features[:subset], optimum_features).mean().item(),
    }


def _load(bank: str, modality: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The bank's memory `(1024, d)` and the clean test features `(216, d)`, float32."""
    memory = load_file(ROOT / "checkpoints" / f"{bank}.exfmem.safetensors")[modality].float()
    features = load_file(ROOT / "checkpoints" / f"{bank}.embeddings.safetensors")[modality].float()
    return memory, features


@torch.no_grad()
def encode(bank: str, modality: str, subset: int, long_iterations: int) -> dict:
    """Everything but the timings, for one bank and modality: the long run on the first
    `subset` clips, both solvers clip by clip on all clips, and the FISTA budget sweep."""
    torch.set_num_threads(1)
    memory, x = _load(bank, modality)
    lipschitz = lipschitz_constant(memory)
    result = {"memory": list(memory.shape), "lipschitz": lipschitz.item()}

    start = time.perf_counter()
    optimum_codes, _ = fista(x[:subset], memory, LAMBDA, rtol=0.0, max_iter=long_iterations, lipschitz=lipschitz)
    long_seconds = time.perf_counter() - start
    optimum_objective = lasso_objective(x[:subset], optimum_codes, memory, LAMBDA)
    optimum_features = _denoised(x[:subset], optimum_codes, memory)
    result["long"] = _summary(x[:subset], optimum_codes, memory, [long_iterations], subset,
                              optimum_objective, optimum_features) | {"seconds": long_seconds}

    for name in SOLVERS:
        codes, iterations = [], []
        for clip in range(len(x)):
            found, count = solve_lasso(x[clip : clip + 1], memory, LAMBDA, name, lipschitz=lipschitz)
            codes.append(found)
            iterations.append(count)
        result[name] = _summary(x, torch.cat(codes), memory, iterations, subset, optimum_objective, optimum_features)

    result["fista_budgets"] = []
    for budget in BUDGETS:
        codes, _ = fista(x[:subset], memory, LAMBDA, rtol=0.0, max_iter=budget, lipschitz=lipschitz)
        gap, worst = _gaps(lasso_objective(x[:subset], codes, memory, LAMBDA), optimum_objective)
        distance = _relative(_denoised(x[:subset], codes, memory), optimum_features).mean().item()
        result["fista_budgets"].append({"iterations": budget, "gap_pct": gap, "gap_worst_clip_pct": worst,
                                        "distance_to_long_output": distance})
    return result


def time_solvers(bank: str, modality: str, clips: int, repeats: int) -> dict:
    """Per solver, the median time of one forward + backward through the memory at batch 1 (the
    gradient an attack step needs) over the first `clips` clips, and the iterations it ran."""
    memory, x = _load(bank, modality)
    timings = {}
    for name in SOLVERS:
        layer = FeatureMemory(memory, solver=name)
        times, iterations = [], []
        for clip in range(clips):
            for round_index in range(repeats + 1):
                features = x[clip : clip + 1].clone().requires_grad_(True)
                start = time.perf_counter()
                torch.autograd.grad(layer(features).sum(), features)
                if round_index:  # the first round warms up
                    times.append(time.perf_counter() - start)
            iterations.append(layer.last_iterations)
        seconds = statistics.median(times)
        timings[name] = {"forward_backward_s": seconds, "timed_iterations_median": statistics.median(iterations),
                         "forward_backward_per_iteration_s": seconds / statistics.median(iterations)}
    return timings


def _print(bank: str, modality: str, result: dict) -> None:
    print(f"\n{bank} / {modality}  (memory {result['memory']}, L = {result['lipschitz']:.0f})")
    print(f"  {'solver':<10}{'clips':>6}{'iter mean':>10}{'iter max':>9}{'nnz':>6}{'objective':>10}{'gap %':>9}"
          f"{'worst %':>9}{'|df|/|f|':>9}{'to long':>9}{'fwd+bwd ms':>11}")
    for name in (*SOLVERS, "long"):
        row = result[name]
        timing = f"{1e3 * row['forward_backward_s']:>11.1f}" if "forward_backward_s" in row else ""
        print(f"  {name:<10}{row['clips']:>6}{row['iterations_mean']:>10.0f}{row['iterations_max']:>9}"
              f"{row['nonzeros_mean']:>6.0f}{row['objective_mean']:>10.4f}{row['gap_pct']:>9.2f}"
              f"{row['gap_worst_clip_pct']:>9.2f}{row['feature_change']:>9.4f}{row['distance_to_long_output']:>9.4f}{timing}")
    per_iteration = result["fista"]["forward_backward_per_iteration_s"]
    for budget in result["fista_budgets"]:
        print(f"  fista cut at {budget['iterations']:>5}: gap {budget['gap_pct']:6.2f} % (worst clip "
              f"{budget['gap_worst_clip_pct']:6.2f} %), output {budget['distance_to_long_output']:.4f} from the long "
              f"run's, ~{1e3 * budget['iterations'] * per_iteration:.0f} ms per forward+backward")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subset", type=int, default=64, help="clips the long run (the optimum) encodes")
    parser.add_argument("--long", type=int, default=20_000, help="iterations of the long run")
    parser.add_argument("--timing-clips", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads for the timings")
    parser.add_argument("--workers", type=int, default=2, help="processes for the (untimed) encodings")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "exfmem_convergence.json")
    args = parser.parse_args()
    started, load_before = time.perf_counter(), os.getloadavg()
    jobs = [(bank, modality) for bank in BANKS for modality in MODALITIES]

    with ProcessPoolExecutor(args.workers) as pool:
        encoded = list(pool.map(encode, *zip(*jobs), repeat(args.subset), repeat(args.long)))
    # Timed after the pool has finished, one measurement at a time.
    torch.set_num_threads(args.threads)
    results = {bank: {} for bank in BANKS}
    for (bank, modality), result in zip(jobs, encoded):
        for name, timing in time_solvers(bank, modality, args.timing_clips, args.repeats).items():
            result[name] |= timing
        results[bank][modality] = result
        _print(bank, modality, result)
    overhead = {bank: {name: PGD_STEPS * sum(results[bank][m][name]["forward_backward_s"] for m in MODALITIES)
                       for name in SOLVERS} for bank in BANKS}
    print(f"\nestimated PGD-{PGD_STEPS} overhead at batch 1 (both memories, {PGD_STEPS} forward+backward passes):")
    for bank, seconds in overhead.items():
        print(f"  {bank}: " + ", ".join(f"{name} {value:.2f} s" for name, value in seconds.items()))

    report = {
        "what": "ExFMem's Lasso solvers on the shipped banks and the shipped clean test features, one clip at a time",
        "hardware": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}",
        "timing_threads": args.threads,
        "load_average_1min": {"start": load_before[0], "end": os.getloadavg()[0]},
        "lasso": {"lam": LAMBDA, "mix": MIX, "step": "1 / ||M||_2^2", "start": "h = 0"},
        "solvers": {
            "reference": {"rule": "max ||dh|| < tol (absolute)", "tol": TOLERANCE, "max_iter": MAX_ITERATIONS},
            "fista": {"rule": "every ||dh|| <= rtol ||h|| (relative), adaptive restart", "rtol": RELATIVE_TOLERANCE,
                      "max_iter": FISTA_MAX_ITERATIONS},
            "long": {"rule": f"FISTA with adaptive restart, {args.long} iterations, no stopping rule",
                     "clips": f"the first {args.subset}"},
        },
        "columns": {
            "objective_mean": f"mean Lasso objective over the first {args.subset} clips (the long run's)",
            "gap_pct": "objective_mean vs the long run's, in %; gap_worst_clip_pct: the worst clip's own gap",
            "feature_change": "mean ||f' - f|| / ||f|| over the clips, f' = mix h M + (1 - mix) f",
            "distance_to_long_output": f"mean ||f' - f'_long|| / ||f'_long|| over the first {args.subset} clips",
            "forward_backward_s": f"median of one forward + backward at batch 1, clips 0-{args.timing_clips - 1}",
            f"pgd{PGD_STEPS}_overhead_s": f"{PGD_STEPS} x (audio + visual forward_backward_s)",
            "fista_budgets": f"FISTA stopped after a fixed count, first {args.subset} clips in one batch",
        },
        "results": results,
        f"pgd{PGD_STEPS}_overhead_s": overhead,
        "seconds": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {args.out} in {report['seconds']:.0f} s")


if __name__ == "__main__":
    main()
