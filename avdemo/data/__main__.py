"""Command line for avdemo's data.

    python -m avdemo.data bank                       # fetch Debian packages, build the asset bank
    python -m avdemo.data splits                     # cache val, test and test-heldout as shards
    python -m avdemo.data generate train --per-class 400 --workers 2   # pre-generate any split
    python -m avdemo.data examples                   # rebuild assets/examples and ATTRIBUTION.md
    python -m avdemo.data preprocess ave ROOT --out OUT   # public datasets -> cached clips
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import public
from .bank import MANIFEST, build_bank, default_bank_dir, load_bank
from .synth import SPLIT_SIZES, SynthConfig, write_synth_split

CACHED_SPLITS = ("val", "test", "test-heldout")


def _progress(label: str):
    start = time.perf_counter()

    def report(done: int, total: int) -> None:
        if done == total or done % 100 == 0:
            rate = done / max(time.perf_counter() - start, 1e-9)
            print(f"\r  {label}: {done}/{total} clips ({rate:.0f} clips/s)", end="\n" if done == total else "", flush=True)

    return report


def _generate(splits, args) -> None:
    bank = load_bank(args.bank)
    config = SynthConfig(frames=args.frames, size=args.size)
    for split in splits:
        out = write_synth_split(
            bank, split, per_class=args.per_class, seed=args.seed, config=config, workers=args.workers,
            progress=_progress(split),
        )
        print(f"  -> {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avdemo.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    bank = commands.add_parser("bank", help="build the AV-Synth asset bank from Debian packages")
    bank.add_argument("--manifest", type=Path, default=MANIFEST)
    bank.add_argument("--out", type=Path, default=None, help=f"default: {default_bank_dir()}")

    for name, help_text in (("generate", "generate splits to disk shards"), ("splits", "cache val/test/test-heldout")):
        command = commands.add_parser(name, help=help_text)
        if name == "generate":
            command.add_argument("split", nargs="+", choices=sorted(SPLIT_SIZES))
        command.add_argument("--per-class", type=int, default=None, help="clips per class (default: the split's size)")
        command.add_argument("--frames", type=int, default=1)
        command.add_argument("--size", type=int, default=224)
        command.add_argument("--seed", type=int, default=0)
        command.add_argument("--workers", type=int, default=0)
        command.add_argument("--bank", type=Path, default=None)

    examples = commands.add_parser("examples", help="rebuild assets/examples and assets/ATTRIBUTION.md")
    examples.add_argument("--bank", type=Path, default=None)
    public.add_cli(commands)

    args = parser.parse_args(argv)
    if args.command == "bank":
        build_bank(args.manifest, args.out)
    elif args.command == "generate":
        _generate(args.split, args)
    elif args.command == "splits":
        _generate(CACHED_SPLITS, args)
    elif args.command == "examples":
        from .examples import write_examples

        for path in write_examples(load_bank(args.bank)):
            print(f"  {path} ({path.stat().st_size / 1024:.0f} KiB)")
    else:
        args.func(args)


if __name__ == "__main__":
    sys.exit(main())
