"""The checked-in AV-Synth manifest is well formed (checked without the Debian packages)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

MANIFEST = Path(__file__).resolve().parents[1] / "avdemo" / "data" / "manifest.json"
INSTRUMENTS = ["accordion", "acoustic_guitar", "cello", "clarinet", "flute",
               "saxophone", "trumpet", "tuba", "violin", "xylophone"]
ANIMALS = ["dog", "cow", "horse", "sheep", "pig", "duck", "rooster", "owl"]
ROLES = {"train", "heldout"}
SPRITE_KINDS = {"png", "svg", "emoji"}
CLASS_KEYS = {"group", "confusable", "gm_program", "note_range", "sprites", "recordings"}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def all_entries(m: dict) -> list[dict]:
    entries = m["soundfonts"] + m["backgrounds"] + m["noise"]
    for c in m["classes"].values():
        entries += c["sprites"] + c["recordings"]
    return entries


def test_top_level_schema(manifest):
    assert manifest["version"] == 1
    assert {"version", "packages", "soundfonts", "backgrounds", "noise", "classes"} <= set(manifest)
    assert set(manifest) <= {"version", "packages", "soundfonts", "backgrounds", "noise", "classes", "notes"}
    assert all(isinstance(n, str) and n for n in manifest.get("notes", []))
    for name, pkg in manifest["packages"].items():
        assert set(pkg) == {"version", "license", "copyright"}, name
        assert pkg["version"] and pkg["license"]
        assert pkg["copyright"] == f"usr/share/doc/{name}/copyright"


def test_every_class_present(manifest):
    assert set(manifest["classes"]) == set(INSTRUMENTS) | set(ANIMALS)
    for name, c in manifest["classes"].items():
        assert set(c) == CLASS_KEYS, name
        assert c["group"] == ("instrument" if name in INSTRUMENTS else "animal")


def test_instrument_synthesis_fields(manifest):
    for name, c in manifest["classes"].items():
        if c["group"] == "animal":
            assert c["gm_program"] is None and c["note_range"] is None, name
            continue
        assert isinstance(c["gm_program"], int) and 0 <= c["gm_program"] <= 127, name
        low, high = c["note_range"]
        assert 0 <= low < high <= 127 and 12 <= high - low <= 36, name


def test_each_class_has_material(manifest):
    for name, c in manifest["classes"].items():
        assert c["sprites"], f"{name} has no sprite"
        # An instrument may do without a real recording when notes can be synthesised.
        assert c["recordings"] or c["gm_program"] is not None, f"{name} has no recording"


def test_ids_unique(manifest):
    ids = Counter(e["id"] for e in all_entries(manifest))
    assert not [i for i, n in ids.items() if n > 1]


def test_entries_well_formed(manifest):
    packages = set(manifest["packages"])
    for e in all_entries(manifest):
        assert e["role"] in ROLES, e["id"]
        assert e["package"] in packages, e["id"]
        assert e["license"].strip() and e["attribution"].strip(), e["id"]
        assert e["path"] and not e["path"].startswith("/"), e["id"]
        if e["path"].endswith(".rcc"):
            assert e.get("member") and not e["member"].startswith("/"), e["id"]
        elif e.get("kind") != "emoji":
            assert "member" not in e, e["id"]
    for c in manifest["classes"].values():
        for s in c["sprites"]:
            assert s["kind"] in SPRITE_KINDS, s["id"]
            if s["kind"] == "emoji":
                assert s["package"] == "fonts-noto-color-emoji" and s["path"].endswith(".ttf")
                assert s["member"], s["id"]
            else:
                assert (s.get("member") or s["path"]).endswith("." + s["kind"]), s["id"]
        for r in c["recordings"]:
            assert (r.get("member") or r["path"]).endswith((".ogg", ".wav")), r["id"]
            trim = r["trim"]
            assert trim is None or (len(trim) == 2 and 0 <= trim[0] < trim[1]), r["id"]


def test_held_out_split(manifest):
    for name, c in manifest["classes"].items():
        for kind in ("sprites", "recordings"):
            roles = Counter(e["role"] for e in c[kind])
            if len(c[kind]) >= 2:
                assert roles["train"] and roles["heldout"], f"{name} {kind}: {dict(roles)}"
            elif len(c[kind]) == 1:
                assert roles["train"] == 1, f"{name}: a single {kind[:-1]} must be train"
    for kind in ("backgrounds", "noise"):
        roles = Counter(e["role"] for e in manifest[kind])
        assert roles["train"] and roles["heldout"] * 5 >= len(manifest[kind]), kind
    assert {s["id"]: s["role"] for s in manifest["soundfonts"]} == {"fluidr3": "train", "timgm6mb": "heldout"}


def test_confusables_are_classes(manifest):
    for name, c in manifest["classes"].items():
        assert c["confusable"], name
        assert set(c["confusable"]) <= set(manifest["classes"]) - {name}, name


def test_asset_counts(manifest):
    assert 10 <= len(manifest["backgrounds"]) <= 25
    assert 4 <= len(manifest["noise"]) <= 8
