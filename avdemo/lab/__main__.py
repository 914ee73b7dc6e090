"""The lab without the page: `python -m avdemo.lab VIDEO [options]` runs one configuration as the
page's Run (or masking) button does and prints its summary; `--out DIR` writes the take-away
(`adversarial.npz` + `run.json`, replayable with `python -m avdemo.lab.replay`).

    python -m avdemo.lab assets/examples/duck-beside-rooster.mp4 --attack tma --modality both
    python -m avdemo.lab clip.webm --model av-concat --craft-on av-sum-vgg --attack mi-fgsm   # black-box transfer
    python -m avdemo.lab clip.webm --mask 0.2 --mask-mode both-async                          # masking, no attack

Any registered attack by name or alias (`avdemo.attacks.available_attacks()`), any shipped model and
defense; budgets as on the page: audio in waveform amplitude, frames in grey levels (/255).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ..attacks import available_attacks
from ..attacks.registry import canonical_name
from ..data.masking import MODES
from ..media import MediaError
from ..zoo import list_models
from .analysis import NO_DEFENSE, SAME_MODEL, run, run_masking
from .export import write_bundle
from .ui import MODALITIES, attack_settings, compute_device, load_input, model_frames
from .views import summary_markdown


def _plain(markdown: str) -> str:
    """The page's summary for a terminal: without bold marks and HTML tags."""
    return re.sub(r"<[^>]+>", "", markdown.replace("**", ""))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avdemo.lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", nargs="?", help="a video file (or give --image and --sound)")
    parser.add_argument("--image")
    parser.add_argument("--sound")
    parser.add_argument("--model", default="av-attention", help=f"one of {', '.join(list_models())}")
    parser.add_argument("--defense", default=NO_DEFENSE)
    parser.add_argument("--attack", default="pgd", help=f"one of {', '.join(available_attacks())} (or an alias: mi-fgsm)")
    parser.add_argument("--modality", default="both", choices=MODALITIES)
    parser.add_argument("--eps-audio", type=float, default=0.006)
    parser.add_argument("--eps-visual", type=float, default=2.0, help="grey levels (out of 255)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--paper", action="store_true", help="the paper preset instead of the budgets given")
    parser.add_argument("--target", help="a class: make the attack targeted")
    parser.add_argument("--region", help="map-target's region: 'silent cello' or 'x0, y0, x1, y1'")
    parser.add_argument("--craft-on", default=SAME_MODEL, help="another zoo entry to craft the attack on (black-box)")
    parser.add_argument("--mask", type=float, help="mask this share of the clip's time (0-1) instead of attacking")
    parser.add_argument("--mask-mode", default="both-sync", choices=list(MODES))
    parser.add_argument("--out", type=Path, help="write adversarial.npz and run.json here")
    args = parser.parse_args(argv)
    if not (args.video or args.image):
        parser.error("give a video file, or --image (with --sound)")
    try:
        attack = canonical_name(args.attack)
        clip, truth = load_input(args.video, args.image, args.sound, model_frames(args.model, args.defense))
        if args.mask is not None:
            analysis, settings = run_masking(clip, args.model, args.defense, args.mask, args.mask_mode, args.seed,
                                             truth, compute_device()), None
        else:
            settings = attack_settings(args.modality, args.eps_audio, args.eps_visual, args.steps, args.seed, args.paper)
            analysis = run(clip, args.model, args.defense, attack, settings, args.target, truth, compute_device(),
                           region=args.region, craft_on=args.craft_on)
    except (ValueError, MediaError) as error:
        sys.exit(f"error: {error}")
    print(_plain(summary_markdown(analysis)))
    if args.out:
        inputs = {"video": args.video, "image": args.image, "sound": args.sound}
        written = write_bundle(analysis, args.out, args.model, args.defense, analysis.attack, settings, args.target,
                               inputs)
        print("wrote " + ", ".join(str(path) for path in written))


if __name__ == "__main__":
    main()
