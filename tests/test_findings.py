"""The findings rules on hand-made reports: each verdict follows its stated rule."""

from __future__ import annotations

from avdemo.evaluation.findings import (
    attacks_hurt,
    concat_fusions_most_robust,
    full_defense_best_ri,
    localization_fooled,
    mim_strongest,
    unimodal_crossing,
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
