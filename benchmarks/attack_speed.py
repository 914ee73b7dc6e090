"""How close is a PGD attack to the cost of the gradients it needs?

For each width and batch size, times PGD-k on both modalities and one forward + backward of
the same model and batch, and prints

    ratio = attack time / ((k + 1) x forward+backward)

PGD-k needs k forward+backward passes plus one forward for the final prediction, so a
ratio at or below 1.15 means the attack machinery (projection, trace, bookkeeping) costs
little. The forward+backward baseline takes the gradient with respect to the inputs, as the
attack does; the full backward (parameters too, as in training) is printed beside it.

    python benchmarks/attack_speed.py [--widths 1 0.25] [--batches 1 32] [--device cuda]
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
from avdemo.attacks import create_attack  # noqa: E402
from avdemo.models import ModelConfig, build_model  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _interleaved(functions: dict, repeats: int, device: torch.device) -> dict[str, float]:
    """Median wall time of each function over `repeats` rounds, after one warm-up round. The
    functions run in turns within each round, so drifts of a shared machine hit all alike."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for round_index in range(repeats + 1):
        for name, function in functions.items():
            _sync(device)
            start = time.perf_counter()
            function()
            _sync(device)
            if round_index:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def measure(width: float, batch: int, steps: int, repeats: int, device: torch.device) -> dict:
    model = build_model(ModelConfig(num_classes=18, width=width)).to(device).eval()
    waveform = (torch.rand(batch, NUM_SAMPLES, device=device) * 2 - 1) * 0.5
    frames = torch.rand(batch, 1, 3, FRAME_SIZE, FRAME_SIZE, device=device)
    labels = torch.randint(0, 18, (batch,), device=device)
    loss_fn = torch.nn.functional.cross_entropy

    def input_gradient():
        a, v = waveform.clone().requires_grad_(True), frames.clone().requires_grad_(True)
        torch.autograd.grad(loss_fn(model(a, v).logits, labels), [a, v])

    def full_backward():
        model.zero_grad(set_to_none=True)
        a, v = waveform.clone().requires_grad_(True), frames.clone().requires_grad_(True)
        loss_fn(model(a, v).logits, labels).backward()

    attack = create_attack("pgd", model, eps_audio=0.01, eps_visual=4 / 255, steps=steps)
    timed = _interleaved(
        {"fwd_bwd": input_gradient, "full": full_backward, "attack": lambda: attack(waveform, frames, labels)},
        repeats,
        device,
    )
    return {
        "width": width,
        "batch": batch,
        "fwd_bwd_s": timed["fwd_bwd"],
        "fwd_full_bwd_s": timed["full"],
        "attack_s": timed["attack"],
        "ratio": timed["attack"] / ((steps + 1) * timed["fwd_bwd"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.25])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=9, help="rounds for small configs (a third for large)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"PGD-{args.steps} on audio + visual, T=1, {FRAME_SIZE} px, {NUM_SAMPLES} samples")
    print(f"device: {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'width':>6} {'batch':>5} {'fwd+bwd s':>10} {'(full bwd) s':>13} {'attack s':>9} {'ratio':>6}")
    for width in args.widths:
        for batch in args.batches:
            repeats = args.repeats if width * batch <= 8 else max(2, args.repeats // 3)
            row = measure(width, batch, args.steps, repeats, device)
            print(
                f"{row['width']:>6g} {row['batch']:>5} {row['fwd_bwd_s']:>10.4f} {row['fwd_full_bwd_s']:>13.4f} "
                f"{row['attack_s']:>9.3f} {row['ratio']:>6.3f}",
                flush=True,
            )
    print("target: ratio <= 1.15")


if __name__ == "__main__":
    main()
