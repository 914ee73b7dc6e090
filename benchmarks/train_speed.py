"""Training throughput per model type, and the minutes each shipped model took.

Times `--steps` SGD steps (batch 32, T = 1, 224 px, 65535 samples, random clips: the cost of a
step does not depend on the content) for each model type and defense at the zoo's width, after
a warm-up step; then prints the training time recorded in each model card.

    python benchmarks/train_speed.py [--width 0.25] [--steps 8] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avdemo import FRAME_SIZE, NUM_SAMPLES  # noqa: E402
from avdemo.training.train import TrainConfig, TrainingObjective, defense_term  # noqa: E402
from avdemo.models import architecture_config, build_model  # noqa: E402
from avdemo.zoo import CHECKPOINTS  # noqa: E402

CASES = (("audio-only", None), ("visual-only", None), ("av-concat", None), ("av-gated-concat", None),
         ("av-attention", None), ("av-concat", "minsim"), ("av-concat", "pcl"))


def clips_per_second(architecture: str, defense: str | None, width: float, steps: int, device: str) -> float:
    model = build_model(architecture_config(architecture, 18, width)).to(device)
    config = TrainConfig(name="bench", architecture=architecture, width=width, defense=defense)
    objective = TrainingObjective(model, defense_term(config, model)).to(device).train()
    optimizer = torch.optim.SGD(objective.parameters(), lr=0.01, momentum=0.9)
    waveform = torch.rand(32, NUM_SAMPLES, device=device) * 2 - 1
    frames = torch.rand(32, 1, 3, FRAME_SIZE, FRAME_SIZE, device=device)
    labels = torch.randint(0, 18, (32,), device=device)

    def step():
        loss, _ = objective(waveform, frames, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * 32 / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    print(f"training throughput, batch 32, width {args.width}, {args.device}, torch {torch.__version__}")
    for architecture, defense in CASES:
        rate = clips_per_second(architecture, defense, args.width, args.steps, args.device)
        print(f"  {architecture + (' + ' + defense if defense else ''):<22} {rate:7.1f} clips/s")
    print("shipped models (from their cards):")
    for card_path in sorted(CHECKPOINTS.glob("*.json")):
        card = json.loads(card_path.read_text())
        training = card.get("training", {})
        if "train_seconds" in training:
            history = training.get("history", [])
            rate = sum(h["clips_per_second"] for h in history) / max(len(history), 1)
            print(f"  {card['name']:<18} {training['train_seconds'] / 60:5.1f} min training, {rate:5.1f} clips/s, "
                  f"{training['epochs']} epochs on {training['hardware']}")


if __name__ == "__main__":
    main()
