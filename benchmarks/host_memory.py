"""A Space host's memory: the app process's resident memory once every model and defense the
page offers has run (weights, defense terms, t-SNE maps and BPDA copies all cached, as after a
busy day), and its peak, next to the page's queue limits.

Runs one 1-step PGD on a shipped example for each model with no defense, then for each defense,
in one process, as the page would; prints resident memory after each. Linux only (/proc).

    python benchmarks/host_memory.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def memory_mib() -> dict[str, float]:
    """Resident (VmRSS) and peak resident (VmHWM) memory of this process, MiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


def main() -> None:
    started = time.perf_counter()
    from avdemo.lab.analysis import NO_DEFENSE, defense_choices, run
    from avdemo.lab.ui import (MAX_DURATION_S, MAX_UPLOAD_MB, attack_settings, build_app, example_paths, load_input,
                               model_choices, model_frames)

    build_app()
    print(f"page built: {memory_mib()['VmRSS']:.0f} MiB resident ({time.perf_counter() - started:.1f} s)")
    example = str(example_paths()[3])
    settings = attack_settings("both", 0.006, 2, 1, 0, False)
    configurations = [(model, NO_DEFENSE) for model in model_choices()]
    configurations += [("av-concat", key) for _, key in defense_choices() if key != NO_DEFENSE]
    for model, defense in configurations:
        clip, truth = load_input(example, frames=model_frames(model, defense))
        run(clip, model, defense, "pgd", settings, truth=truth)
        print(f"  after {model} / {defense}: {memory_mib()['VmRSS']:.0f} MiB resident")
    memory = memory_mib()
    print(f"every model and defense loaded: {memory['VmRSS']:.0f} MiB resident, peak {memory['VmHWM']:.0f} MiB "
          f"({len(configurations)} configurations, {time.perf_counter() - started:.0f} s)")
    print(f"queue: AVDEMO_CONCURRENCY runs at a time (default 2), 32 waiting at most; uploads <= {MAX_UPLOAD_MB} MB, "
          f"videos <= {MAX_DURATION_S // 60} min")


if __name__ == "__main__":
    main()
