"""Public dataset loaders on tiny fake dataset folders: parsing, missing and bad files,
segment centring, and preprocessing into shards end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avdemo import NUM_SAMPLES, SAMPLE_RATE
from avdemo.data.public import (
    PARSERS,
    VideoItem,
    load_clip,
    main,
    parse_ave,
    parse_kinetics_sounds,
    parse_music,
    parse_reference_csv,
    preprocess,
)
from avdemo.data.shards import ShardDataset, read_index
from avdemo.media import MediaError, decode_clip

from media_factory import grey_for_time, write_video

WINDOW = NUM_SAMPLES / SAMPLE_RATE
TINY = dict(width=32, height=32, fps=10, sample_rate=11025)
AVE_CLASSES = ["Bark", "Church bell", "Male speech, man speaking"]


def _touch(path):
    """A placeholder video: parsers only check that the file exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _video(path, duration=1.0, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, duration=duration, **{**TINY, **options})


def _loud_span(waveform, threshold=0.05):
    loud = np.nonzero(np.abs(waveform) > threshold)[0]
    return int(loud[0]), int(loud[-1])


def _write_ave(root, videos: dict[str, str], splits: dict[str, list[str]] | None = None):
    """AVE files: `videos` maps a video id to its annotation line; `splits` maps a split file
    to the ids it lists."""
    root.mkdir(parents=True, exist_ok=True)
    header = "Category&VideoID&Quality&StartTime&EndTime"
    (root / "Annotations.txt").write_text("\n".join([header, *videos.values()]) + "\n")
    for name, ids in (splits or {}).items():
        (root / name).write_text("\n".join(videos[i] for i in ids) + "\n")


AVE_LINES = {
    "bark1": "Bark&bark1&good&1&3",
    "bark2": "Bark&bark2&good&0&10",
    "bell1": "Church bell&bell1&good&2&4",
    "bell2": "Church bell&bell2&good&0&2",
    "talk1": "Male speech, man speaking&talk1&good&0.5&1.5",
    "gone1": "Church bell&gone1&good&3&5",
}


# --- AVE -------------------------------------------------------------------------------------


def test_ave_without_split_files_keeps_every_event_with_its_segment(tmp_path):
    _write_ave(tmp_path, AVE_LINES)
    for video_id in ["bark1", "bark2", "bell1", "bell2"]:
        _touch(tmp_path / "AVE" / f"{video_id}.mp4")
    _touch(tmp_path / "talk1.mp4")  # also found directly under the root
    with pytest.warns(UserWarning, match="1 of 6 AVE videos were not found"):
        videos = parse_ave(tmp_path)
    assert videos.classes == AVE_CLASSES
    by_id = {item.path.stem: item for item in videos.items}
    assert sorted(by_id) == ["bark1", "bark2", "bell1", "bell2", "talk1"]
    assert by_id["talk1"].path == tmp_path / "talk1.mp4"
    assert (by_id["talk1"].label, by_id["talk1"].class_name) == (2, "Male speech, man speaking")
    assert (by_id["bell1"].label, by_id["bell1"].start, by_id["bell1"].end) == (1, 2.0, 4.0)
    assert {item.split for item in videos.items} == {None}
    assert videos.split_names() == [None]
    assert len(videos.missing) == 1 and "gone1" in videos.missing[0]
    assert "Annotations.txt line 7" in videos.missing[0]


def test_ave_split_files_give_the_splits(tmp_path):
    splits = {"trainSet.txt": ["bark1", "bell1", "gone1"], "valSet.txt": ["bark2", "talk1"], "testSet.txt": ["bell2"]}
    _write_ave(tmp_path, AVE_LINES, splits)
    for video_id in ["bark1", "bark2", "bell1", "bell2", "talk1"]:
        _touch(tmp_path / "AVE" / f"{video_id}.mp4")
    with pytest.warns(UserWarning, match="1 of 6"):
        videos = parse_ave(tmp_path)
    assert videos.split_names() == ["train", "val", "test"]
    assert [item.path.stem for item in videos.split("train").items] == ["bark1", "bell1"]
    assert [item.path.stem for item in videos.split("val").items] == ["bark2", "talk1"]
    assert [item.label for item in videos.split("test").items] == [1]
    assert videos.split("train").classes == AVE_CLASSES
    assert videos.missing == [f"{tmp_path / 'AVE' / 'gone1'}.mp4 (trainSet.txt line 3)"]


@pytest.mark.parametrize(
    "bad_line,message",
    [
        ("Bark&only_four&good&1", "Annotations.txt, line 3: expected"),
        ("Bark&vid&good&one&3", "Annotations.txt, line 3: StartTime and EndTime must be numbers"),
        ("Bark&vid&good&5&2", "Annotations.txt, line 3: the segment must satisfy"),
    ],
)
def test_ave_malformed_lines_name_file_and_line(tmp_path, bad_line, message):
    _write_ave(tmp_path, {"bark1": AVE_LINES["bark1"], "bad": bad_line})
    with pytest.raises(ValueError, match=message):
        parse_ave(tmp_path)


def test_ave_split_file_with_an_unknown_category_is_an_error(tmp_path):
    _write_ave(tmp_path, {"bark1": AVE_LINES["bark1"]})
    (tmp_path / "testSet.txt").write_text("Bark&bark1&good&1&3\nAccordion&acc1&good&0&2\n")
    with pytest.raises(ValueError, match="testSet.txt line 2: category 'Accordion'"):
        parse_ave(tmp_path)


def test_ave_without_annotations_names_the_expected_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="Annotations.txt"):
        parse_ave(tmp_path)


# --- MUSIC -----------------------------------------------------------------------------------


def _write_music(root, listing, name="MUSIC_solo_videos.json"):
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(json.dumps({"videos": listing}))


def test_music_classes_folders_and_a_seeded_60_20_20_split(tmp_path):
    accordion = [f"acc{i:02d}" for i in range(10)]
    guitar = [f"gtr{i:02d}" for i in range(5)]
    _write_music(tmp_path, {"accordion": accordion, "Acoustic Guitar": guitar})
    for video_id in accordion:
        _touch(tmp_path / "accordion" / f"{video_id}.mp4")
    for video_id in guitar[:4]:
        _touch(tmp_path / "solo" / "acoustic_guitar" / f"{video_id}.mkv")
    _touch(tmp_path / "Acoustic Guitar" / "gtr04.webm")  # the folder named as in the list
    videos = parse_music(tmp_path)
    assert videos.classes == ["accordion", "acoustic_guitar"] and videos.missing == []
    splits = {item.path.stem: item.split for item in videos.items}
    counts = {(label, split): sum(1 for i in videos.items if (i.label, i.split) == (label, split))
              for label in (0, 1) for split in ("train", "val", "test")}
    assert counts == {(0, "train"): 6, (0, "val"): 2, (0, "test"): 2, (1, "train"): 3, (1, "val"): 1, (1, "test"): 1}
    assert {item.path.suffix for item in videos.items if item.label == 1} == {".mkv", ".webm"}

    # The split depends on the list only: not on its order, nor on which videos are on disk.
    _write_music(tmp_path, {"Acoustic Guitar": guitar[::-1], "accordion": accordion[::-1]})
    (tmp_path / "accordion" / "acc03.mp4").unlink()
    with pytest.warns(UserWarning, match="1 of 15 MUSIC videos"):
        again = parse_music(tmp_path)
    assert {item.path.stem: item.split for item in again.items} == {k: v for k, v in splits.items() if k != "acc03"}
    assert "acc03" in again.missing[0] and "MUSIC_solo_videos.json" in again.missing[0]


def test_music_malformed_lists(tmp_path):
    (tmp_path / "MUSIC_solo_videos.json").write_text('{"videos": {\n"cello": ["a",]\n}}')
    with pytest.raises(ValueError, match="MUSIC_solo_videos.json, line 2: not valid JSON"):
        parse_music(tmp_path)
    _write_music(tmp_path, ["cello"])
    with pytest.raises(ValueError, match='expected {"videos"'):
        parse_music(tmp_path)
    with pytest.raises(FileNotFoundError, match="MUSIC21_solo_videos.json"):
        PARSERS["music21"](tmp_path)


# --- Kinetics-Sounds -------------------------------------------------------------------------

KINETICS_HEADER = "label,youtube_id,time_start,time_end,split,is_cc"


def test_kinetics_rows_folders_and_class_subset(tmp_path):
    (tmp_path / "train.csv").write_text(
        f"{KINETICS_HEADER}\n"
        "playing bagpipes,pipe_1,10,20,train,0\n"
        "playing bagpipes,pipe_2,3.0,13.0,train,0\n"
        "abseiling,abs_1,0,10,train,0\n"
        '"dog, barking",dog_1,5,15,train,1\n'
    )
    (tmp_path / "validate.csv").write_text("youtube_id,label,time_end,time_start,split\nlost_1,abseiling,10,0,val\n"
                                           "pipe_3,playing bagpipes,30,20,val\n")
    _touch(tmp_path / "train" / "playing bagpipes" / "pipe_1_000010_000020.mp4")
    _touch(tmp_path / "playing_bagpipes" / "pipe_2_000003_000013.mp4")
    _touch(tmp_path / "train" / "abseiling" / "abs_1_000000_000010.mp4")
    _touch(tmp_path / "dog_1_000005_000015.mp4")
    _touch(tmp_path / "validate" / "playing_bagpipes" / "pipe_3_000020_000030.mp4")

    with pytest.warns(UserWarning, match="1 of 6 Kinetics-Sounds videos"):
        everything = parse_kinetics_sounds(tmp_path)
    assert everything.classes == ["abseiling", "dog, barking", "playing bagpipes"]
    assert sorted((i.path.name[:6], i.split, i.label) for i in everything.items) == [
        ("abs_1_", "train", 0), ("dog_1_", "train", 1), ("pipe_1", "train", 2), ("pipe_2", "train", 2),
        ("pipe_3", "val", 2),
    ]
    assert all(item.start is None for item in everything.items)  # the files are the segments
    assert "lost_1_000000_000010" in everything.missing[0] and "validate.csv line 2" in everything.missing[0]

    sounds = parse_kinetics_sounds(tmp_path, classes=["playing bagpipes", "dog, barking"])
    assert sounds.classes == ["dog, barking", "playing bagpipes"] and sounds.missing == []
    assert sorted(item.path.name[:6] for item in sounds.items) == ["dog_1_", "pipe_1", "pipe_2", "pipe_3"]
    with pytest.raises(ValueError, match="classes not found in the Kinetics CSV files: tap dancing"):
        parse_kinetics_sounds(tmp_path, classes=["abseiling", "tap dancing"])


def test_kinetics_malformed_csv(tmp_path):
    (tmp_path / "train.csv").write_text("label,id,time_start,time_end\nabseiling,a,0,10\n")
    with pytest.raises(ValueError, match="train.csv, line 1: the header lacks the column.s. youtube_id"):
        parse_kinetics_sounds(tmp_path)
    (tmp_path / "train.csv").write_text(f"{KINETICS_HEADER}\nabseiling,a,0,10,train,0\nabseiling,b,zero,10,train,0\n")
    with pytest.raises(ValueError, match="train.csv, line 3: time_start and time_end must be numbers"):
        parse_kinetics_sounds(tmp_path)
    with pytest.raises(FileNotFoundError, match="no Kinetics CSV file found"):
        parse_kinetics_sounds(tmp_path / "empty")


# --- Reference CSV lists ---------------------------------------------------------------------


def test_reference_csv_labels_from_folders_and_frame_folders_reported(tmp_path):
    (tmp_path / "train.csv").write_text("/cello/c1.wav,/cello/c1.mp4,80\n/violin/v1.wav,/violin/v1.mp4,75\n\n")
    (tmp_path / "val.csv").write_text("/violin/v2.wav,/violin/v2.mp4,80\n/cello/c2.wav,/cello/c2.mp4,80\n")
    for name in ["cello/c1.mp4", "violin/v1.mp4", "violin/v2.mp4"]:
        _touch(tmp_path / name)
    (tmp_path / "cello" / "c2.mp4").mkdir()  # Sound-of-Pixels style: a folder of extracted frames
    with pytest.warns(UserWarning, match="1 of 4 reference CSV videos"):
        videos = parse_reference_csv(tmp_path)
    assert videos.classes == ["cello", "violin"]
    assert [(i.path.relative_to(tmp_path).as_posix(), i.label, i.split) for i in videos.items] == [
        ("cello/c1.mp4", 0, "train"), ("violin/v1.mp4", 1, "train"), ("violin/v2.mp4", 1, "val")]
    assert "val.csv line 2: a folder of extracted frames" in videos.missing[0]
    only_val = parse_reference_csv(tmp_path, csv_paths=[tmp_path / "train.csv"])
    assert only_val.split_names() == ["train"] and len(only_val.items) == 2


def test_reference_csv_malformed_row(tmp_path):
    (tmp_path / "train.csv").write_text("/cello/c1.wav,/cello/c1.mp4,80\n/cello/c2.wav,/cello/c2.mp4\n")
    with pytest.raises(ValueError, match="train.csv, line 2: expected '/class/id.wav,/class/id.mp4,n_frames'"):
        parse_reference_csv(tmp_path)
    (tmp_path / "train.csv").write_text("/c1.wav,/c1.mp4,80\n")
    with pytest.raises(ValueError, match="train.csv, line 1"):
        parse_reference_csv(tmp_path)


# --- Decoding --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def four_seconds(tmp_path_factory):
    """A 4 s video whose grey level encodes time, with PCM sound (no codec delay) throughout."""
    folder = tmp_path_factory.mktemp("decode")
    return _video(folder / "four.mkv", duration=4.0, audio_codec="pcm_s16le")


def test_centring_on_the_middle_is_exactly_decode_clip(four_seconds):
    direct = decode_clip(four_seconds, num_frames=3, size=32)
    centred = decode_clip(four_seconds, centre=direct.info.duration / 2, num_frames=3, size=32)
    np.testing.assert_array_equal(centred.frames, direct.frames)
    np.testing.assert_array_equal(centred.waveform, direct.waveform)
    np.testing.assert_allclose(centred.frame_times, direct.frame_times)


def test_centring_on_a_segment_moves_frames_and_sound(four_seconds):
    clip = decode_clip(four_seconds, centre=1.0, num_frames=3, size=32)
    # Frames at the centres of three parts of [1 - 2.97, 1 + 2.97], clipped to the file.
    np.testing.assert_allclose(clip.frame_times, [0.0, 1.0, 1.0 + WINDOW / 3], atol=1e-4)
    expected_greys = [grey_for_time(t, 4.0) for t in (0.0, 1.0, 2.9)]  # 2.98 s shows the frame of 2.9 s
    assert clip.frames.reshape(3, -1).mean(axis=1) == pytest.approx(expected_greys, abs=3)
    # Window [-1.97 s, 3.97 s]: silence until the file starts, sound to the window's end.
    assert _loud_span(clip.waveform) == (pytest.approx((WINDOW / 2 - 1.0) * SAMPLE_RATE, abs=3), NUM_SAMPLES - 1)
    assert clip.has_audio and clip.waveform.shape == (NUM_SAMPLES,)
    # Window [0.03 s, 5.97 s]: sound from the window's start to the file's end (4 s).
    late = decode_clip(four_seconds, centre=3.0, size=32)
    assert _loud_span(late.waveform) == (0, pytest.approx((WINDOW / 2 + 1.0) * SAMPLE_RATE, abs=3))
    assert late.frames.mean() == pytest.approx(grey_for_time(3.0, 4.0), abs=3)


def test_a_centre_on_a_frame_boundary_picks_the_frame_starting_there(tmp_path):
    # At 11 fps the frame of 12/11 s starts at a time that 1/44100 s steps cannot hit exactly.
    path = _video(tmp_path / "eleven.mp4", duration=4.0, fps=11, audio_codec=None)
    clip = decode_clip(path, centre=12 / 11, size=32)
    assert clip.frames.mean() == pytest.approx(grey_for_time(12 / 11, 4.0), abs=2)


def test_load_clip_centres_on_the_annotated_segment(tmp_path):
    path = _video(tmp_path / "event.mp4", duration=4.0)
    at_segment = load_clip(VideoItem(path, 2, "Bark", "train", start=0.0, end=1.0), size=32)
    whole_file = load_clip(VideoItem(path, 2, "Bark", "train"), num_frames=2, size=48)
    assert at_segment.frames.shape == (1, 32, 32, 3) and at_segment.frames.dtype == np.uint8
    assert at_segment.frames.mean() == pytest.approx(grey_for_time(0.5, 4.0), abs=3)
    assert at_segment.waveform.shape == (NUM_SAMPLES,) and at_segment.waveform.dtype == np.float32
    assert np.abs(at_segment.waveform).max() == pytest.approx(0.5, abs=0.05)
    assert at_segment.label == 2 and at_segment.extra["has_audio"]
    # AAC adds a codec delay of a few tens of milliseconds at the start of the sound.
    assert _loud_span(at_segment.waveform)[0] == pytest.approx((WINDOW / 2 - 0.5) * SAMPLE_RATE, abs=0.06 * SAMPLE_RATE)
    assert whole_file.frames.shape == (2, 48, 48, 3)
    assert whole_file.extra["frame_times"] == pytest.approx([2 - WINDOW / 4, 2 + WINDOW / 4], abs=1e-3)


def test_load_clip_without_audio_gives_silence_and_a_flag(tmp_path):
    path = _video(tmp_path / "mute.mp4", audio_codec=None)
    for segment in [(None, None), (0.0, 0.5)]:
        record = load_clip(VideoItem(path, 0, "Bark", None, *segment), size=32)
        assert record.extra["has_audio"] is False
        assert record.waveform.shape == (NUM_SAMPLES,) and not record.waveform.any()


def test_load_clip_raises_media_error_for_a_damaged_file(tmp_path):
    path = _video(tmp_path / "whole.mp4")
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(path.read_bytes()[:300])
    with pytest.raises(MediaError, match="damaged.mp4"):
        load_clip(VideoItem(damaged, 0, "Bark", None, 0.0, 1.0), size=32)


# --- Preprocessing ---------------------------------------------------------------------------


def test_preprocess_ave_writes_shards_and_lists_bad_files(tmp_path):
    root, out = tmp_path / "AVE_Dataset", tmp_path / "shards"
    lines = {**AVE_LINES, "broken": "Bark&broken&good&0&1", "mute1": "Church bell&mute1&good&0&1"}
    splits = {"trainSet.txt": ["bark1", "bell1", "talk1", "broken"], "valSet.txt": ["bark2", "gone1"],
              "testSet.txt": ["bell2", "mute1"]}
    _write_ave(root, lines, splits)
    for video_id in ["bark1", "bark2", "bell1", "bell2", "talk1"]:
        _video(root / "AVE" / f"{video_id}.mp4", duration=2.0)
    _video(root / "AVE" / "mute1.mp4", audio_codec=None)
    (root / "AVE" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 but not really a video")

    with pytest.warns(UserWarning, match="1 of 8 AVE videos"):
        summary = preprocess("ave", root, out, num_frames=2, size=32)

    assert summary["classes"] == AVE_CLASSES
    assert {name: split["clips"] for name, split in summary["splits"].items()} == {"train": 3, "val": 1, "test": 2}
    assert summary["splits"]["train"]["per_class"] == {"Bark": 1, "Church bell": 1, "Male speech, man speaking": 1}
    skipped = [(entry["path"], entry["split"]) for entry in summary["skipped"]]
    assert skipped == [(str(root / "AVE/broken.mp4"), "train")]
    assert "damaged or truncated" in summary["skipped"][0]["reason"]
    assert summary["without_audio"] == [str(root / "AVE/mute1.mp4")]
    assert len(summary["missing"]) == 1 and "gone1" in summary["missing"][0]

    train = ShardDataset(out / "train")
    assert train.classes == AVE_CLASSES and len(train) == 3
    assert [train[i]["label"] for i in range(3)] == [0, 1, 2]
    sample = train[0]
    assert sample["frames"].shape == (2, 3, 32, 32) and sample["waveform"].shape == (NUM_SAMPLES,)
    assert 0 <= sample["frames"].min() and sample["frames"].max() <= 1 and sample["waveform"].abs().max() <= 1
    source = read_index(out / "train")["source"]
    assert source["dataset"] == "ave" and source["split"] == "train" and source["missing_videos"] == 1
    assert source["counts"]["Bark"] == 1 and source["skipped"][0]["path"].endswith("broken.mp4")
    test = ShardDataset(out / "test")
    assert [test[i]["label"] for i in range(2)] == [1, 1]
    assert test[1]["waveform"].abs().max() == 0 and test[0]["waveform"].abs().max() > 0.4
    assert read_index(out / "test")["source"]["without_audio"] == [str(root / "AVE/mute1.mp4")]


def test_cli_preprocesses_reference_csv_with_workers_and_a_class_limit(tmp_path, capsys):
    root, out = tmp_path / "lists", tmp_path / "shards"
    root.mkdir()
    (root / "train.csv").write_text("\n".join(f"/{c}/{c}{i}.wav,/{c}/{c}{i}.mp4,16" for c in ("cello", "tuba")
                                              for i in range(3)) + "\n")
    (root / "test.csv").write_text("/tuba/tuba9.wav,/tuba/tuba9.mp4,16\n")
    for name in [*(f"cello/cello{i}" for i in range(3)), *(f"tuba/tuba{i}" for i in (0, 1, 2, 9))]:
        _video(root / f"{name}.mp4", duration=1.0)

    main(["preprocess", "reference-csv", str(root), "--out", str(out), "--size", "32", "--workers", "2",
          "--limit-per-class", "2", "--csv", "train.csv", str(root / "test.csv")])

    printed = capsys.readouterr().out
    assert "train: 4 clips (0 skipped, 0 without audio)" in printed and "test: 1 clips" in printed
    train = ShardDataset(out / "train")
    assert train.classes == ["cello", "tuba"] and [train[i]["label"] for i in range(len(train))] == [0, 0, 1, 1]
    assert train[0]["frames"].shape == (1, 3, 32, 32)
    assert len(ShardDataset(out / "test")) == 1


def test_preprocess_rejects_an_unknown_dataset(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'vggsound'"):
        preprocess("vggsound", tmp_path, tmp_path / "out")
