"""Make an exported run again and check it: `python -m avdemo.lab.replay run.json [--video F |
--image F [--sound F]] [--out DIR]`.

Reads the record the page wrote beside `adversarial.npz` (`avdemo.lab.export`), runs the same
input, model, defense, attack and settings (the model it was crafted on, or the masking of a
masked clip) through the page's own steps, writes the new bundle
to `--out`, and compares its adversarial arrays with the recorded ones. A shipped example is
found by its path in the repository; an upload must be given again (its SHA-256 is checked).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..paths import ROOT
from ..zoo import entry_digest, list_models, sha256_of
from .analysis import SAME_MODEL, Analysis, run, run_masking
from .export import INPUT_KINDS, read_arrays, settings_from_record, write_bundle
from .ui import load_input, model_frames


def input_paths(record: dict, given: dict[str, str | None]) -> dict[str, str | None]:
    """The input files of a recorded run: shipped ones from the repository, uploads from
    `given`, each checked against the recorded SHA-256. Raises SystemExit with the reason."""
    paths = {}
    for kind in INPUT_KINDS:
        recorded = record["inputs"].get(kind)
        if recorded is None:
            paths[kind] = None
            continue
        path = Path(given[kind]) if given.get(kind) else (ROOT / recorded["path"] if recorded["shipped"] else None)
        if path is None:
            raise SystemExit(f"the run used an uploaded {kind} '{recorded['path']}': give it again with --{kind}")
        if not path.is_file():
            raise SystemExit(f"no {kind} file at {path}")
        if sha256_of(path) != recorded["sha256"]:
            raise SystemExit(f"{path} is not the {kind} the run used (its SHA-256 differs)")
        paths[kind] = str(path)
    return paths


def replay(record: dict, paths: dict[str, str | None], device: str = "cpu") -> Analysis:
    """Run the recorded configuration on `paths` again, as the Run (or the masking) button does."""
    used = [(record["entry"], record["entry_sha256"])]
    if record.get("craft_on"):
        used.append((record["craft_on"], record["craft_on_sha256"]))
    for entry, digest in used:
        if entry not in list_models():
            raise SystemExit(f"the zoo has no entry {entry!r}")
        if entry_digest(entry) != digest:
            raise SystemExit(f"{entry} in checkpoints/ has other weights than the run used "
                             f"(SHA-256 {digest[:12]}…): the run cannot be made again exactly")
    clip, truth = load_input(paths["video"], paths["image"], paths["sound"], model_frames(record["model"], record["defense"]))
    masking = record.get("masking")
    if masking:
        return run_masking(clip, record["model"], record["defense"], masking["share"], masking["mode"], masking["seed"],
                           truth, device)
    return run(clip, record["model"], record["defense"], record["attack"], settings_from_record(record["settings"]),
               record["target"], truth, device, region=record.get("region"), craft_on=record.get("craft_on") or SAME_MODEL)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avdemo.lab.replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("record", type=Path, help="the run.json the page exported")
    for kind in INPUT_KINDS:
        parser.add_argument(f"--{kind}", default=None, help=f"the uploaded {kind} file, when the run used one")
    parser.add_argument("--out", type=Path, default=Path("replayed"), help="where to write the new bundle")
    args = parser.parse_args(argv)
    record = json.loads(args.record.read_text())
    paths = input_paths(record, {kind: getattr(args, kind) for kind in INPUT_KINDS})
    analysis = replay(record, paths)
    written = write_bundle(analysis, args.out, record["model"], record["defense"], record["attack"],
                           settings_from_record(record["settings"]), record["target"], paths)
    remade = json.loads(written[1].read_text())
    print(f"wrote {written[0]}; attacked prediction {remade['attacked_prediction']} (recorded {record['attacked_prediction']})")
    if remade["arrays_sha256"] == record["arrays_sha256"]:
        print("the adversarial input is bit-identical to the recorded one")
        return
    old_path = args.record.parent / record["arrays"]
    if old_path.is_file():
        old, new = read_arrays(old_path), read_arrays(written[0])
        for name in ("adversarial_frames", "adversarial_waveform"):
            print(f"{name}: max |difference| {np.abs(new[name] - old[name]).max():.3g}")
    else:
        print("the adversarial input differs from the recorded one (no recorded arrays beside the record to compare)")


if __name__ == "__main__":
    main()
