"""The findings rules on hand-made reports: each verdict follows its stated rule."""

from __future__ import annotations

from avdemo.evaluation.findings import (
    attacks_hurt,
    concat_fusions_most_robust,
    full_defense_best_ri,
    fusions_markdown,
    localization_fooled,
    mim_strongest,
    stale_entries,
    unimodal_crossing,
    zoo_table,
)


def _report(**tables):
    curves = tables.pop("curves", [])
    return {"stamp": {"splits": {"test": 90, "test-heldout": 90}}, "tables": tables, "curves": curves}


def _row(split, attack, budget, clean, a, v, av):
    return {"split": split, "attack": attack, "budget": budget, "✓AV": clean, "✗A": a, "✗V": v, "✗AV": av,
            "Avg": (a + v + av) / 3}


def test_attacks_hurt_and_mim_strongest():
    rows = [_row(s, attack, b, 0.95, a, v, av) for s in ("test", "test-heldout") for b in ("paper", "caption")
            for attack, a, v, av in (("FGSM", 0.6, 0.7, 0.5), ("PGD", 0.3, 0.5, 0.2), ("MIM", 0.2, 0.5, 0.1))]
    assert attacks_hurt(_report(table1=rows))[2] == "reproduced"
    assert mim_strongest(_report(table1=rows))[2] == "reproduced"
    rows[2]["✗V"] = 0.9  # MIM no longer strongest in one column of one split/budget
    assert mim_strongest(_report(table1=rows))[2] == "partly"
    weak = [_row(s, a, "paper", 0.95, 0.9, 0.9, 0.9) for s in ("test", "test-heldout") for a in ("FGSM", "PGD", "MIM")]
    assert attacks_hurt(_report(table1=weak))[2] == "not reproduced"


def test_fusion_ranking_and_ri():
    fusions = [{"split": "test", "fusion": f"av-{name}", "✗AV": value} for name, value in
               (("sum", 0.1), ("concat", 0.5), ("film", 0.2), ("gated-sum", 0.3), ("gated-concat", 0.4))]
    assert concat_fusions_most_robust(_report(table2=fusions))[2] == "reproduced"
    fusions[2]["✗AV"] = 0.45
    assert concat_fusions_most_robust(_report(table2=fusions))[2] == "not reproduced"
    defenses = [{"split": "test", "attack": "FGSM", "defense": d, "RI": ri} for d, ri in
                (("None", 0.0), ("MinSim", 0.1), ("MinSim + ExFMem (reference ISTA)", 0.05),
                 ("MinSim + ExFMem (FISTA)", 0.2))]
    assert full_defense_best_ri(_report(table3=defenses))[2] == "reproduced"  # the best variant counts
    defenses[1]["RI"] = 0.3
    assert full_defense_best_ri(_report(table3=defenses))[2] == "not reproduced"


def test_crossing_and_localization():
    eps = [0, 0.01, 0.02]
    curves = [{"split": "test", "series": "✗A (av-concat, audio attacked)", "eps": eps, "accuracy": [0.95, 0.6, 0.3]},
              {"split": "test", "series": "✗V (av-concat, visual attacked)", "eps": eps, "accuracy": [0.95, 0.9, 0.9]},
              {"split": "test", "series": "Unimodal ✓V (clean)", "eps": eps, "accuracy": [0.4] * 3},
              {"split": "test", "series": "Unimodal ✓A (clean)", "eps": eps, "accuracy": [0.8] * 3}]
    rule, numbers, verdict = unimodal_crossing(_report(curves=curves))
    assert verdict == "partly" and "from ε = 0.02" in numbers and "never" in numbers
    rows = [{"split": "test", "model": "av-attention", "budget": "caption", "condition": c, "pointing_game": p}
            for c, p in (("✓AV", 0.9), ("✗A", 0.7), ("✗V", 0.5), ("✗AV", 0.4))]
    assert localization_fooled(_report(localization=rows))[2] == "reproduced"
    rows[1]["pointing_game"] = 0.85
    assert localization_fooled(_report(localization=rows))[2] == "partly"


def _fusion_card(name, differs=None, map_kind="correspondence"):
    card = {"role": "fusion", "description": f"{name} fusion", "data": {"frames": 4, "generator": 2, "bank_version": 2},
            "training": {"recipe": {"init_audio": "audio-only", "init_visual": "visual-only", "epochs": 6}},
            "map": {"kind": map_kind, "trained_with": {"contrastive_weight": 1.0, "mosaic_weight": 1.0, "temperature": 0.07}}}
    if differs is not None:
        card["comparison"] = {"base": "av-concat", "differs_in": differs}
    return card


def test_the_fusion_comparison_states_what_differs_and_what_is_shared_from_the_cards():
    cards = {"av-concat": _fusion_card("concat"), "av-sum": _fusion_card("sum", {"architecture": "av-sum"}),
             "unimodal": {"role": "unimodal"}}
    text = fusions_markdown(cards)
    assert "compares 2 fusions" in text and "differ from it only in: av-sum: architecture = av-sum" in text
    assert "T = 4 segments" in text and "audio-only (audio)" in text and "same cell-level audio-visual correspondence" in text
    cards["av-sum"]["map"] = None
    assert "maps are of different kinds: av-concat correspondence, av-sum none" in fusions_markdown(cards)
    del cards["av-sum"]["comparison"]
    text = fusions_markdown(cards)
    assert "av-sum do not record" in text and "share everything else" not in text
    assert "T | val" in zoo_table(cards) and "| av-concat | 4 |" in zoo_table(cards)


def test_an_entry_is_stale_when_any_part_of_the_report_measured_other_weights_or_missed_it():
    report = {"stamp": {"checkpoints": {"a": "1", "b": "2", "c": "3"}},
              "updates": [{"checkpoints": {"a": "1", "b": "9", "c": "3"}}]}
    assert stale_entries(report, {"a": "1", "b": "9", "c": "3"}) == ["b"]  # table 1 still measured b's old weights
    assert stale_entries(report, {"a": "1", "c": "3", "d": "4"}) == ["d"]  # never measured
    assert stale_entries({"stamp": {"checkpoints": {"a": "1"}}}, {"a": "1"}) == []
