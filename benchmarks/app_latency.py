"""How long the app takes: start-up to a usable page, and each stage of a full run.

A full run is what the Run button does on a shipped example (PGD-10 on both modalities by
default): decode, attack, heatmaps, perceptibility, t-SNE placement, then the views, the
audio tracks and the lossless bundle (npz + run.json); the playable mp4 is timed apart (it is
written on request). Runs are timed warm (after one run on the same model), as a person meets
them after the page has warmed up. Targets: the server's part of a warm run <= 0.8 s on the
2-core CPU, start-up <= 15 s.

    python benchmarks/app_latency.py [--runs 5] [--model av-attention] [--attack pgd]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
ROOT = Path(__file__).resolve().parents[1]


def startup_seconds(port: int = 7891) -> float:
    """From `python app.py` to the page answering HTTP 200."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env={**__import__("os").environ,
                               "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < 120:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the app did not answer within 120 s")
    finally:
        process.terminate()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default="av-attention")
    parser.add_argument("--defense", default="none", help="a defense key (avdemo.defenses), or none; a defended "
                        "model is attacked with every objective its defense lists, as the app does")
    parser.add_argument("--attack", default="pgd")
    args = parser.parse_args()

    from avdemo.lab import views
    from avdemo.lab.analysis import run
    from avdemo.lab.export import write_bundle
    from avdemo.lab.ui import attack_settings, example_paths, load_input, model_frames
    from avdemo.media import write_mp4

    print(f"start-up to a usable page: {startup_seconds():.1f} s (target <= 15 s)")
    example = str(example_paths()[3])
    stages: dict[str, list[float]] = {}
    on_request: list[float] = []  # the playable mp4: its own button, not part of a Run
    for index in range(args.runs + 1):
        timings = {}
        clock = time.perf_counter()
        clip, truth = load_input(example, frames=model_frames(args.model, args.defense))  # T frames, as the page
        timings["decode"] = time.perf_counter() - clock
        settings = attack_settings("both", 0.006, 2, 10, 0, False)
        analysis = run(clip, args.model, args.defense, args.attack, settings, truth=truth)
        timings.update(analysis.seconds)
        clock = time.perf_counter()
        figures = [views.top_k_figure(analysis), views.sound_figure(analysis), views.trace_figure(analysis),
                   views.tsne_figure(analysis)]
        for figure in figures:
            figure.to_json()  # what Gradio sends to the browser
        views.segment_strip(analysis)
        views.localization_verdict(analysis)
        views.summary_markdown(analysis)
        views.perturbation_image(analysis)
        views.audio_tracks(analysis)
        timings["views"] = time.perf_counter() - clock
        clock = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            write_bundle(analysis, Path(folder), args.model, args.defense, args.attack, settings, None, {"video": example})
            timings["lossless bundle"] = time.perf_counter() - clock
            clock = time.perf_counter()
            write_mp4(Path(folder) / "adversarial.mp4", analysis.adversarial_frames, analysis.adversarial_waveform)
            on_request.append(time.perf_counter() - clock)
        if index == 0:
            print(f"first (cold) run: {sum(timings.values()):.2f} s")
            continue
        for stage, seconds in timings.items():
            stages.setdefault(stage, []).append(seconds)
    print(f"warm runs ({args.runs}, median), {args.model} / {args.defense} / {args.attack}-10 on audio + visual:")
    total = 0.0
    for stage, values in stages.items():
        median = statistics.median(values)
        total += median
        print(f"  {stage:<15} {median * 1000:8.1f} ms")
    print(f"  {'total':<15} {total * 1000:8.1f} ms (server part of a Run; target <= 800 ms)")
    print(f"  playable mp4, on request: {statistics.median(on_request) * 1000:.1f} ms")
    print("The latency a person feels (click to the page drawn) is benchmarks/page_latency.py.")


if __name__ == "__main__":
    main()
