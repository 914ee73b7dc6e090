"""The papers' public datasets, read from video files the user already has, and cached as shards.

Nothing here downloads anything: each parser reads a dataset's own annotation files and
finds the videos on the local disk. Four formats:
- AVE (Tian et al., ECCV 2018): `Annotations.txt` and the official `trainSet.txt`,
  `valSet.txt`, `testSet.txt`; 28 event classes, each video with its annotated segment.
- MIT MUSIC (Zhao et al., ECCV 2018): the solo video lists (json); 11 instruments
  (21 in MUSIC-21). The lists have no official split: see `parse_music`.
- Kinetics-Sounds: Kinetics CSV rows, optionally restricted to a class list.
- The CVPR 2021 reference code's CSV lists (`/class/id.wav,/class/id.mp4,n_frames`).

Missing videos never stop a parse: YouTube datasets always have gone or broken videos (the
reference code lost the audio of 20+ AVE videos). A parser keeps the videos it finds, lists
the others in `VideoList.missing` and emits one warning with their count. Class lists come
from the annotations, not from the files found, so labels do not shift when videos are lost.
"""

from __future__ import annotations

import argparse
import csv
import functools
import itertools
import json
import math
import multiprocessing
import random
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


from .. import FRAME_SIZE, NUM_SAMPLES, SAMPLE_RATE
from ..media import MediaError, decode_clip
from .shards import ClipRecord, write_split

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv")
SPLIT_ORDER = ("train", "val", "test")
SPLIT_ALIASES = {"validate": "val", "validation": "val", "valid": "val"}
UNSPLIT = "all"  # the shard folder of a dataset without splits

AVE_HEADER = "Category&VideoID&Quality&StartTime&EndTime"
AVE_SPLIT_FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}
MUSIC_HELD_OUT_FRACTION = 0.2  # of each class for val and for test; train gets the rest (60/20/20)
KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end")
REFERENCE_SPLIT_FILES = ("train.csv", "val.csv", "test.csv")


@dataclass(frozen=True)
class VideoItem:
    """One labelled video file. `start`/`end`: the annotated segment in seconds from the start
    of the file, where the dataset gives one (else the whole file is the example)."""

    path: Path
    label: int
    class_name: str
    split: str | None
    start: float | None = None
    end: float | None = None


@dataclass
class VideoList:
    """A parsed dataset: its classes (label = index), the videos found, and a description
    (`"<expected path> (<annotation file> line <n>)"`) of each listed video that was not."""

    classes: list[str]
    items: list[VideoItem]
    missing: list[str] = field(default_factory=list)

    def split(self, name: str | None) -> VideoList:
        """The items of one split (None: the items without a split), with the same classes."""
        return VideoList(self.classes, [item for item in self.items if item.split == name])

    def split_names(self) -> list[str | None]:
        """The splits present: train, val, test first, then any others alphabetically, then None."""
        present = {item.split for item in self.items}
        ordered = [name for name in SPLIT_ORDER if name in present]
        others = sorted(name for name in present if name is not None and name not in SPLIT_ORDER)
        return ordered + others + ([None] if None in present else [])


def _canonical_split(name: str) -> str:
    name = name.strip().lower()
    return SPLIT_ALIASES.get(name, name)


def _find_video(folders: Iterable[Path], stem: str) -> Path | None:
    """The first `<folder>/<stem><ext>` that exists, trying folders in order, then extensions."""
    for folder in folders:
        for extension in VIDEO_EXTENSIONS:
            candidate = folder / f"{stem}{extension}"
            if candidate.is_file():
                return candidate
    return None


def _require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: expected {path}")
    return path


def _warn_if_missing(videos: VideoList, dataset: str, root: Path) -> VideoList:
    if videos.missing:
        total = len(videos.items) + len(videos.missing)
        warnings.warn(
            f"{len(videos.missing)} of {total} {dataset} videos were not found under {root}; "
            "they are skipped and listed in VideoList.missing",
            stacklevel=3,
        )
    return videos


# --- AVE -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AveRow:
    category: str
    video_id: str
    start: float
    end: float
    where: str


def _read_ave_rows(path: Path) -> list[_AveRow]:
    """Rows `Category&VideoID&Quality&StartTime&EndTime` (times in seconds); a header line
    (AVE's own, starting with "Category&") is skipped, blank lines too."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        line = line.strip()
        if not line or (number == 1 and line.startswith("Category&")):
            continue
        where = f"{path.name} line {number}"
        fields = [part.strip() for part in line.split("&")]
        if len(fields) != 5 or not fields[0] or not fields[1]:
            raise ValueError(f"{path}, line {number}: expected '{AVE_HEADER}', got {line!r}")
        category, video_id, _quality, start_text, end_text = fields
        try:
            start, end = float(start_text), float(end_text)
        except ValueError:
            raise ValueError(f"{path}, line {number}: StartTime and EndTime must be numbers, got {line!r}") from None
        if not 0 <= start < end:
            raise ValueError(f"{path}, line {number}: the segment must satisfy 0 <= StartTime < EndTime, got {line!r}")
        rows.append(_AveRow(category, video_id, start, end, where))
    return rows


def parse_ave(root: str | Path) -> VideoList:
    """AVE from its release folder: `Annotations.txt` (all 4143 events) gives the classes
    (sorted); the split files, where present, give the examples and their splits, else every
    annotated event is one example with split None. Videos: `<root>/AVE/<id>.mp4` or
    `<root>/<id>.mp4`. A video with two events gives two examples (two segments)."""
    root = Path(root)
    annotations = _read_ave_rows(_require_file(root / "Annotations.txt", "AVE annotation file"))
    classes = sorted({row.category for row in annotations})
    split_paths = {split: root / name for split, name in AVE_SPLIT_FILES.items() if (root / name).is_file()}
    if split_paths:
        examples = [(split, row) for split, path in split_paths.items() for row in _read_ave_rows(path)]
    else:
        examples = [(None, row) for row in annotations]
    label_of = {name: index for index, name in enumerate(classes)}
    items, missing = [], []
    for split, row in examples:
        if row.category not in label_of:
            raise ValueError(f"{row.where}: category {row.category!r} does not occur in Annotations.txt")
        path = _find_video([root / "AVE", root], row.video_id)
        if path is None:
            missing.append(f"{root / 'AVE' / row.video_id}.mp4 ({row.where})")
            continue
        items.append(VideoItem(path, label_of[row.category], row.category, split, row.start, row.end))
    return _warn_if_missing(VideoList(classes, items, missing), "AVE", root)


# --- MIT MUSIC -------------------------------------------------------------------------------


def _canonical_instrument(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


def _music_split(video_ids: list[str], class_name: str, seed: int) -> dict[str, str]:
    """60/20/20 per class: val and test get round(20 %) each, train the rest. The ids are
    sorted, then shuffled by a generator seeded with (seed, class), so a video's split depends
    only on the list file, never on which videos are on disk or on other classes."""
    ordered = sorted(set(video_ids))
    random.Random(f"{seed}/{class_name}").shuffle(ordered)
    held_out = math.floor(len(ordered) * MUSIC_HELD_OUT_FRACTION + 0.5)
    splits = ["val"] * held_out + ["test"] * held_out + ["train"] * (len(ordered) - 2 * held_out)
    return dict(zip(ordered, splits))


def parse_music(root: str | Path, list_file: str = "MUSIC_solo_videos.json", seed: int = 1234) -> VideoList:
    """MIT MUSIC solo videos (`{"videos": {"<instrument>": ["<youtube id>", ...]}}`), one class
    per instrument (lowercase, spaces -> underscores, sorted): 11 with `MUSIC_solo_videos.json`,
    21 with `MUSIC21_solo_videos.json`. The paper's 312/104/104 split was random and is not
    published, so each class is split 60/20/20 deterministically (`_music_split`). Videos:
    `<root>/[solo/]<instrument>/<id>.{mp4,webm,mkv}`, the folder named as in the list or
    canonically."""
    root = Path(root)
    path = _require_file(root / list_file, "MUSIC video list")
    try:
        listing = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}, line {error.lineno}: not valid JSON ({error.msg})") from None
    videos = listing.get("videos") if isinstance(listing, dict) else None
    if not isinstance(videos, dict) or not all(isinstance(ids, list) for ids in videos.values()):
        raise ValueError(f'{path}: expected {{"videos": {{"<instrument>": ["<youtube id>", ...]}}}}')
    ids_by_class: dict[str, list[tuple[str, str]]] = {}
    for listed_name, video_ids in videos.items():
        ids_by_class.setdefault(_canonical_instrument(listed_name), []).extend((listed_name, i) for i in video_ids)
    classes = sorted(ids_by_class)
    items, missing = [], []
    for label, class_name in enumerate(classes):
        split_of = _music_split([video_id for _, video_id in ids_by_class[class_name]], class_name, seed)
        seen = set()
        for listed_name, video_id in ids_by_class[class_name]:
            if video_id in seen:
                continue
            seen.add(video_id)
            names = dict.fromkeys([listed_name, class_name])
            folders = [base / name for base in (root, root / "solo") for name in names]
            video = _find_video(folders, video_id)
            if video is None:
                missing.append(f"{root / class_name / video_id}.mp4 ({list_file}, {listed_name!r})")
                continue
            items.append(VideoItem(video, label, class_name, split_of[video_id]))
    return _warn_if_missing(VideoList(classes, items, missing), "MUSIC", root)


def parse_music21(root: str | Path) -> VideoList:
    """MUSIC-21: `parse_music` on `MUSIC21_solo_videos.json`."""
    return parse_music(root, "MUSIC21_solo_videos.json")


# --- Kinetics-Sounds -------------------------------------------------------------------------


def _csv_files(root: Path, csv_paths: Sequence[str | Path] | None, defaults: Iterable[Path], what: str) -> list[Path]:
    """The CSV files to read: those given (a relative path that is not a file is taken
    relative to `root`), else the defaults that exist."""
    if csv_paths:
        paths = [Path(p) if Path(p).is_file() else root / p for p in csv_paths]
        return [_require_file(path, what) for path in paths]
    found = [path for path in defaults if path.is_file()]
    if not found:
        raise FileNotFoundError(f"no {what} found under {root}")
    return found


def _kinetics_name(youtube_id: str, time_start: float, time_end: float) -> str:
    """The usual Kinetics download name: `<id>_<start:06d>_<end:06d>`."""
    return f"{youtube_id}_{int(round(time_start)):06d}_{int(round(time_end)):06d}"


def parse_kinetics_sounds(
    root: str | Path,
    csv_paths: Sequence[str | Path] | None = None,
    classes: list[str] | None = None,
) -> VideoList:
    """Kinetics rows (`label,youtube_id,time_start,time_end[,split][,...]`, columns found by
    header name) from `csv_paths` or every `*.csv` in `root` (else `root/annotations`), kept
    only for `classes` when given (the Kinetics-Sounds subset; the classes are then exactly
    those, sorted, and every one must occur in the CSVs). Split: the `split` column, else
    the CSV's name ("validate" -> "val"). Videos are the downloaded segments, so items carry
    no segment: `<root>/[<split>/][<label>/]<id>_<start:06d>_<end:06d>.mp4`, the label folder
    with spaces or underscores."""
    root = Path(root)
    defaults = sorted(root.glob("*.csv")) or sorted((root / "annotations").glob("*.csv"))
    wanted = {name.strip() for name in classes} if classes is not None else None
    rows = []
    for path in _csv_files(root, csv_paths, defaults, "Kinetics CSV file"):
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            absent = [column for column in KINETICS_COLUMNS if column not in (reader.fieldnames or [])]
            if absent:
                raise ValueError(f"{path}, line 1: the header lacks the column(s) {', '.join(absent)}")
            for row in reader:
                label = (row["label"] or "").strip()
                if wanted is not None and label not in wanted:
                    continue
                where = f"{path.name} line {reader.line_num}"
                try:
                    start, end = float(row["time_start"]), float(row["time_end"])
                except (TypeError, ValueError):
                    message = f"{path}, line {reader.line_num}: time_start and time_end must be numbers"
                    raise ValueError(message) from None
                youtube_id = (row["youtube_id"] or "").strip()
                if not label or not youtube_id:
                    raise ValueError(f"{path}, line {reader.line_num}: empty label or youtube_id")
                split = _canonical_split(row.get("split") or path.stem)
                rows.append((label, youtube_id, start, end, split, where))
    found_classes = {row[0] for row in rows}
    if wanted is not None and wanted - found_classes:
        raise ValueError(f"classes not found in the Kinetics CSV files: {', '.join(sorted(wanted - found_classes))}")
    class_names = sorted(wanted if wanted is not None else found_classes)
    label_of = {name: index for index, name in enumerate(class_names)}
    items, missing = [], []
    for label, youtube_id, start, end, split, where in rows:
        split_folders = dict.fromkeys([split] + [alias for alias, name in SPLIT_ALIASES.items() if name == split])
        label_folders = dict.fromkeys([label, label.replace(" ", "_")])
        folders = [root / s / name for s in split_folders for name in label_folders]
        folders += [root / name for name in label_folders] + [root / s for s in split_folders] + [root]
        name = _kinetics_name(youtube_id, start, end)
        video = _find_video(folders, name)
        if video is None:
            missing.append(f"{root / split / label / name}.mp4 ({where})")
            continue
        items.append(VideoItem(video, label_of[label], label, split))
    return _warn_if_missing(VideoList(class_names, items, missing), "Kinetics-Sounds", root)


# --- The reference code's CSV lists ----------------------------------------------------------


def parse_reference_csv(root: str | Path, csv_paths: Sequence[str | Path] | None = None) -> VideoList:
    """The CVPR 2021 code's lists: rows `/class/id.wav,/class/id.mp4,n_frames` without header,
    one CSV per split, the split named by the file (default: `train.csv`, `val.csv`,
    `test.csv` in `root`). The video path is taken relative to `root` (leading slash
    stripped); the label is its folder's name, classes sorted. Only video files are read:
    a `<id>.mp4` that is a folder of extracted frames (as Sound-of-Pixels writes them) is
    reported missing."""
    root = Path(root)
    defaults = [root / name for name in REFERENCE_SPLIT_FILES]
    rows = []
    for path in _csv_files(root, csv_paths, defaults, "reference CSV list"):
        split = _canonical_split(path.stem)
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for number, fields in enumerate(csv.reader(handle), start=1):
                if not any(part.strip() for part in fields):
                    continue
                relative = Path(fields[1].strip().lstrip("/")) if len(fields) == 3 else None
                if relative is None or not fields[2].strip().isdigit() or not relative.parent.name:
                    expected = "'/class/id.wav,/class/id.mp4,n_frames'"
                    raise ValueError(f"{path}, line {number}: expected {expected}, got {fields}")
                rows.append((relative, split, f"{path.name} line {number}"))
    classes = sorted({relative.parent.name for relative, _, _ in rows})
    label_of = {name: index for index, name in enumerate(classes)}
    items, missing = [], []
    for relative, split, where in rows:
        video = root / relative
        if video.is_dir():
            missing.append(f"{video} ({where}: a folder of extracted frames, not a video file)")
        elif not video.is_file():
            missing.append(f"{video} ({where})")
        else:
            items.append(VideoItem(video, label_of[relative.parent.name], relative.parent.name, split))
    return _warn_if_missing(VideoList(classes, items, missing), "reference CSV", root)


PARSERS: dict[str, Callable[..., VideoList]] = {
    "ave": parse_ave,
    "music": parse_music,
    "music21": parse_music21,
    "kinetics-sounds": parse_kinetics_sounds,
    "reference-csv": parse_reference_csv,
}
CSV_DATASETS = ("kinetics-sounds", "reference-csv")  # the parsers that take `csv_paths`


# --- Decoding --------------------------------------------------------------------------------


def load_clip(
    item: VideoItem,
    num_frames: int = 1,
    size: int = FRAME_SIZE,
    sample_rate: int = SAMPLE_RATE,
    num_samples: int = NUM_SAMPLES,
    max_bytes: int | None = None,
) -> ClipRecord:
    """Decode one item: frames `(T, S, S, 3)` uint8, waveform `(L,)` float32 in [-1, 1]; the
    window is centred on the annotated segment's centre where there is one, else on the
    file's middle. A file without audio gives silence and `extra["has_audio"] = False`.
    Raises `MediaError` for a file that cannot be decoded."""
    if item.start is None or item.end is None:
        clip = decode_clip(item.path, num_frames, sample_rate, num_samples, size, max_bytes)
    else:
        centre = (item.start + item.end) / 2
        clip = decode_clip(item.path, num_frames, sample_rate, num_samples, size, max_bytes, centre=centre)
    extra = {"path": str(item.path), "has_audio": clip.has_audio, "frame_times": clip.frame_times}
    return ClipRecord(clip.frames, clip.waveform, item.label, extra=extra)


def _load_or_reason(item: VideoItem, num_frames: int, size: int) -> tuple[ClipRecord | None, str | None]:
    """`load_clip`, with a bad file turned into its reason (runs in worker processes)."""
    try:
        return load_clip(item, num_frames, size), None
    except MediaError as error:
        return None, str(error)


# --- Preprocessing ---------------------------------------------------------------------------


def _first_per_class(items: list[VideoItem], limit: int | None) -> list[VideoItem]:
    """The first `limit` items of each class, in list order (all items when limit is None)."""
    if limit is None:
        return items
    taken: Counter[int] = Counter()
    kept = []
    for item in items:
        if taken[item.label] < limit:
            taken[item.label] += 1
            kept.append(item)
    return kept


def _recorded(
    items: list[VideoItem], results: Iterable, source: dict, classes: list[str], tick: Callable[[], None]
) -> Iterator[ClipRecord]:
    """The decoded records, while filling `source` with per-class counts, skipped files (with
    reasons) and files without audio. `write_split` writes its index after consuming every
    record, so `source` is complete by the time it is saved."""
    for item, (record, reason) in zip(items, results):
        tick()
        if record is None:
            source["skipped"].append({"path": str(item.path), "reason": reason})
            continue
        if not record.extra["has_audio"]:
            source["without_audio"].append(str(item.path))
        source["counts"][classes[item.label]] += 1
        yield record


def _progress_bar(total: int, enabled: bool) -> tuple[Callable[[], None], Callable[[], None]]:
    """(tick, close) callbacks: a tqdm bar when tqdm is installed (it is not a runtime
    requirement), else a counter line on stdout."""
    if not enabled:
        return lambda: None, lambda: None
    try:
        from tqdm import tqdm
    except ImportError:
        done = [0]

        def tick():
            done[0] += 1
            print(f"\r{done[0]}/{total} videos", end="\n" if done[0] == total else "", flush=True)

        return tick, lambda: None
    bar = tqdm(total=total, unit="video")
    return (lambda: bar.update()), bar.close


def preprocess(
    dataset: str,
    root: str | Path,
    out: str | Path,
    num_frames: int = 1,
    size: int = FRAME_SIZE,
    workers: int = 0,
    limit_per_class: int | None = None,
    parser_options: dict | None = None,
    show_progress: bool = False,
) -> dict:
    """Parse `dataset` (a `PARSERS` name) at `root`, decode every video found (in `workers`
    processes when > 0) and write one shard folder per split, `out/<split>` (`out/all` for a
    dataset without splits), with the clips at T = `num_frames`, `size` px, 65535 samples.
    `limit_per_class` keeps the first K videos of each class in each split (quick runs);
    `parser_options` go to the parser (`csv_paths`, `classes`). Files that cannot be decoded
    are skipped and listed, never fatal. Returns the summary: classes, per-split counts,
    missing videos, skipped files with reasons, files without audio."""
    if dataset not in PARSERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(PARSERS)}")
    root, out = Path(root), Path(out)
    videos = PARSERS[dataset](root, **(parser_options or {}))
    plan = {split: _first_per_class(videos.split(split).items, limit_per_class) for split in videos.split_names()}
    summary = {"dataset": dataset, "root": str(root), "out": str(out), "classes": videos.classes, "splits": {},
               "missing": videos.missing, "skipped": [], "without_audio": []}
    decode = functools.partial(_load_or_reason, num_frames=num_frames, size=size)
    pool = multiprocessing.Pool(workers) if workers > 0 else None  # before any progress-bar thread
    tick, close_progress = _progress_bar(sum(len(items) for items in plan.values()), show_progress)
    try:
        for split, items in plan.items():
            folder = split or UNSPLIT
            source = {"dataset": dataset, "root": str(root), "split": split, "frames": num_frames, "size": size,
                      "counts": dict.fromkeys(videos.classes, 0), "missing_videos": len(videos.missing),
                      "skipped": [], "without_audio": []}
            results = pool.imap(decode, items, chunksize=4) if pool else map(decode, items)
            records = _recorded(items, results, source, videos.classes, tick)
            first = next(records, None)
            if first is not None:
                write_split(out / folder, itertools.chain([first], records), videos.classes, source)
            summary["splits"][folder] = {"clips": sum(source["counts"].values()), "per_class": source["counts"],
                                         "skipped": len(source["skipped"]),
                                         "without_audio": len(source["without_audio"])}
            summary["skipped"] += [{**entry, "split": split} for entry in source["skipped"]]
            summary["without_audio"] += source["without_audio"]
    finally:
        close_progress()
        if pool:
            pool.terminate()  # idle once every result is read; stops the work at once after an error
    return summary


# --- Command line ----------------------------------------------------------------------------


def _format_summary(summary: dict) -> str:
    lines = [f"{summary['dataset']}: {len(summary['classes'])} classes, shards in {summary['out']}"]
    for folder, counts in summary["splits"].items():
        lines.append(f"  {folder}: {counts['clips']} clips ({counts['skipped']} skipped, "
                     f"{counts['without_audio']} without audio)")
    if summary["missing"]:
        lines.append(f"  {len(summary['missing'])} listed videos not found, e.g. {summary['missing'][0]}")
    lines += [f"  skipped {entry['path']}: {entry['reason']}" for entry in summary["skipped"]]
    if summary["without_audio"]:
        lines.append(f"  {len(summary['without_audio'])} videos without audio (stored with silence)")
    return "\n".join(lines)


def _run_preprocess(args: argparse.Namespace) -> dict:
    options = {}
    if args.csv:
        if args.dataset not in CSV_DATASETS:
            raise SystemExit(f"--csv applies to {', '.join(CSV_DATASETS)} only")
        options["csv_paths"] = args.csv
    if args.classes:
        if args.dataset != "kinetics-sounds":
            raise SystemExit("--classes applies to kinetics-sounds only")
        lines = Path(args.classes).read_text(encoding="utf-8").splitlines()
        options["classes"] = [line.strip() for line in lines if line.strip()]
    summary = preprocess(args.dataset, args.root, args.out, args.frames, args.size, args.workers,
                         args.limit_per_class, options, show_progress=True)
    print(_format_summary(summary))
    return summary


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Register the `preprocess` subcommand on an argparse subparsers object."""
    command = subparsers.add_parser(
        "preprocess", help="turn a folder of a public dataset's videos into cached clips (shards)",
        description="Decode a public dataset's local videos into shard folders, one per split. Nothing is downloaded.",
    )
    command.add_argument("dataset", choices=sorted(PARSERS))
    command.add_argument("root", type=Path, help="the dataset folder (annotation files and videos)")
    command.add_argument("--out", type=Path, required=True, help="where to write <split>/ shard folders")
    command.add_argument("--frames", type=int, default=1, help="frames per clip (default 1, as the paper)")
    command.add_argument("--size", type=int, default=FRAME_SIZE, help=f"frame size in pixels (default {FRAME_SIZE})")
    command.add_argument("--workers", type=int, default=0, help="decoding processes (default 0: in this process)")
    command.add_argument("--limit-per-class", type=int, default=None,
                         help="keep the first K videos per class and split (quick runs)")
    command.add_argument("--csv", nargs="+", type=Path, help="CSV lists (kinetics-sounds, reference-csv)")
    command.add_argument("--classes", type=Path, help="kinetics-sounds: a file of class names, one per line")
    command.set_defaults(func=_run_preprocess)
    return command


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avdemo.data.public")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
