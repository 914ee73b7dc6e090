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
SPRITE_KINDS = {"png", "webp", "svg", "iconify", "emoji", "jpg-white"}
EXTENSIONS = {"png": ".png", "webp": ".webp", "svg": ".svg", "jpg-white": ".jpg"}
# The held-out rule (manifest "heldout_rule"), as data: sprite styles held out in every class...
HELDOUT_STYLES = {"fonts-noto-color-emoji", "@iconify-json/openmoji"}
# ...and the recording source held out in animal classes.
HELDOUT_ANIMAL_SOURCE = "/explore_farm_animals/"
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
    assert manifest["version"] == 2
    top = {"version", "heldout_rule", "packages", "soundfonts", "backgrounds", "noise", "classes"}
    assert top <= set(manifest) <= top | {"notes"}
    assert isinstance(manifest["heldout_rule"], str) and 100 < len(manifest["heldout_rule"]) < 1000
    assert all(isinstance(n, str) and n for n in manifest.get("notes", []))
    for name, pkg in manifest["packages"].items():
        assert {"version", "license", "copyright"} <= set(pkg) <= {"version", "license", "copyright", "partial", "registry"}, name
        assert pkg["version"] and pkg["license"]
        if pkg.get("registry") == "npm":
            assert name.startswith("@") and pkg["copyright"] == "package.json", name
        else:
            assert "registry" not in pkg and pkg["copyright"] == f"usr/share/doc/{name}/copyright", name


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
        if e["path"].endswith((".rcc", ".zip")):
            assert e.get("member") and not e["member"].startswith("/"), e["id"]
        elif e.get("kind") not in ("emoji", "iconify"):
            assert "member" not in e, e["id"]
    for c in manifest["classes"].values():
        for s in c["sprites"]:
            assert s["kind"] in SPRITE_KINDS, s["id"]
            if s["kind"] == "emoji":
                assert s["package"] == "fonts-noto-color-emoji" and s["path"].endswith(".ttf")
                assert s["member"], s["id"]
            elif s["kind"] == "iconify":
                assert s["package"].startswith("@iconify-json/") and s["path"] == "icons.json" and s["member"], s["id"]
            else:
                assert (s.get("member") or s["path"]).endswith(EXTENSIONS[s["kind"]]), s["id"]
        for r in c["recordings"]:
            assert (r.get("member") or r["path"]).endswith((".ogg", ".wav")), r["id"]
            trim = r["trim"]
            assert trim is None or (len(trim) == 2 and 0 <= trim[0] < trim[1]), r["id"]


def test_held_out_sprites_follow_the_rule(manifest):
    for name, c in manifest["classes"].items():
        heldout = {s["id"] for s in c["sprites"] if s["role"] == "heldout"}
        styled = {s["id"] for s in c["sprites"] if s["package"] in HELDOUT_STYLES}
        if len(c["sprites"]) == 1:
            assert not heldout, f"{name}: a single sprite must be train"
        elif styled:
            assert heldout == styled, name
        else:  # no emoji for the class: its OpenClipart drawing by ganson
            assert heldout and all("ganson" in s["path"] for s in c["sprites"] if s["id"] in heldout), name
        assert len(heldout) < len(c["sprites"]), name


def _source(recording: dict) -> tuple[str, str]:
    """A recording's source: its package, or for GCompris its activity (one .rcc per activity)."""
    return recording["package"], recording["path"] if recording["path"].endswith(".rcc") else ""


def test_held_out_recordings_are_one_whole_source(manifest):
    for name, c in manifest["classes"].items():
        heldout = [r for r in c["recordings"] if r["role"] == "heldout"]
        if len({_source(r) for r in c["recordings"]}) < 2:
            assert not heldout, f"{name}: with one recording source everything trains"
            continue
        assert len({_source(r) for r in heldout}) == 1 and len(heldout) < len(c["recordings"]), name
        if c["group"] == "animal":
            expected = [r for r in c["recordings"] if HELDOUT_ANIMAL_SOURCE in r.get("member", "")]
        else:
            expected = [r for r in c["recordings"] if "/instruments/" not in r.get("member", "")]
        assert heldout == expected, name


def test_held_out_soundfont_backgrounds_noise(manifest):
    assert {s["id"]: s["role"] for s in manifest["soundfonts"]} == {
        "fluidr3": "train", "csound-gmbank": "train", "timgm6mb": "heldout"}
    for font in manifest["soundfonts"]:
        # sf_GMbank shares samples with TimGM6mb except for these three (see the notes)
        expected = ["flute", "saxophone", "trumpet"] if font["id"] == "csound-gmbank" else None
        assert font.get("classes") == expected, font["id"]
    for e in manifest["backgrounds"]:
        assert (e["role"] == "heldout") == (e["package"] == "mate-backgrounds"), e["id"]
    for kind in ("backgrounds", "noise"):
        roles = Counter(e["role"] for e in manifest[kind])
        assert roles["train"] and roles["heldout"] * 5 >= len(manifest[kind]), kind


def test_thin_classes_rebalanced(manifest):
    """Every class but clarinet, tuba and xylophone (no second source exists) has 5+ sprites."""
    thin = {name for name, c in manifest["classes"].items() if len(c["sprites"]) < 5}
    assert thin == {"clarinet", "tuba", "xylophone"}


def test_confusables_are_classes(manifest):
    for name, c in manifest["classes"].items():
        assert c["confusable"], name
        assert set(c["confusable"]) <= set(manifest["classes"]) - {name}, name


def test_asset_counts(manifest):
    assert 10 <= len(manifest["backgrounds"]) <= 25
    assert 4 <= len(manifest["noise"]) <= 8
