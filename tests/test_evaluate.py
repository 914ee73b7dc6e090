"""The whole robustness evaluation end to end on a tiny set: the real zoo, one AV-Synth clip
per class generated from the real bank (built or reused from the cache)."""

from __future__ import annotations

import json

import pytest

from avdemo.data.bank import default_bank_dir, load_bank
from avdemo.data.shards import ShardDataset
from avdemo.data.synth import write_synth_split
from avdemo.evaluate import markdown, write_report
from avdemo.zoo import list_models

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif("av-minsim-exfmem" not in list_models(), reason="needs the shipped zoo")]


@pytest.fixture(scope="module")
def tiny_test_split(tmp_path_factory):
    from avdemo.data.bank import build_bank

    if not (default_bank_dir() / "bank.json").is_file():
        build_bank(log=lambda *_: None)
    folder = write_synth_split(load_bank(), "test", tmp_path_factory.mktemp("eval") / "test", per_class=1, seed=99)
    return ShardDataset(folder)


def test_evaluation_end_to_end(tiny_test_split, tmp_path):
    from avdemo.evaluate import evaluate

    report = evaluate({"test": tiny_test_split}, "cpu", log=lambda *_: None, per_class=1)
    tables = report["tables"]
    assert {row["attack"] for row in tables["table1"]} == {"FGSM", "PGD", "MIM"}
    assert len(tables["table2"]) == 5 and len(tables["table3"]) == 16
    for row in tables["table1"] + tables["table2"] + tables["table3"]:
        for column in ("✓AV", "✗A", "✗V", "✗AV", "Avg"):
            assert 0 <= row[column] <= 1
        assert row["Avg"] == pytest.approx((row["✗A"] + row["✗V"] + row["✗AV"]) / 3)
    none = [row for row in tables["table3"] if row["defense"] == "None"]
    assert all(row["RI"] == 0 for row in none)
    assert {row["condition"] for row in tables["localization"]} == {"✓AV", "✗A", "✗V", "✗AV"}
    assert len(report["curves"]) == 7 and all(len(c["accuracy"]) == 6 for c in report["curves"])
    # At eps = 0 the attacked curves start at the clean accuracy.
    clean = next(r["✓AV"] for r in tables["table1"] if r["budget"] == "paper")
    assert report["curves"][2]["accuracy"][0] == pytest.approx(clean)
    assert report["stamp"]["splits"] == {"test": 18} and len(report["stamp"]["checkpoints"]) == len(list_models())
    written = write_report(report, tmp_path)
    assert json.loads((tmp_path / "robustness.json").read_text())["stamp"]["command"].startswith("python -m avdemo.evaluate")
    assert (tmp_path / "table3.csv").read_text().count("\n") == 17 and (tmp_path / "curves.html").is_file()
    assert "Table 3 analogue" in markdown(report) and len(written) >= 7
