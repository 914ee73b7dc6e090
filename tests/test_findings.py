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
    return {"stamp": {"splits": {"test": {"key": 90, "other": 90}}}, "tables": tables, "curves": curves}


def _flags(share: float, clips: int = 90) -> str:
    """Per-clip outcomes: the first share * clips clips right."""
    right = round(share * clips)
    return "1" * right + "0" * (clips - right)


def _row(attack, clean, a, v, av, budget="paper", split="test", **extra):
    outcome = {"✓AV": clean, "✗A": a, "✗V": v, "✗AV": av}
    return {"split": split, "attack": attack, "budget": budget, **outcome, "Avg": (a + v + av) / 3,
            "per_clip": {column: _flags(share) for column, share in outcome.items()}, **extra}


def test_attacks_hurt_follows_the_drops_interval():
    strong = [_row(attack, 0.95, 0.3, 0.5, av) for attack, av in (("FGSM", 0.5), ("PGD", 0.2), ("MIM", 0.1))]
    assert attacks_hurt(_report(table1=strong))[2] == "reproduced"
    weak = [_row(attack, 0.95, 0.95, 0.95, 0.95) for attack in ("FGSM", "PGD", "MIM")]
    assert attacks_hurt(_report(table1=weak))[2] == "not reproduced"
    near = [_row("PGD", 0.95, 0.9, 0.9, 0.83)]  # a 12-point drop on 90 clips: the interval straddles 10
    verdict = attacks_hurt(_report(table1=near))[2]
    assert verdict.startswith("inconclusive at 90 clips") and "would settle it" in verdict
    mixed = [_row("FGSM", 0.95, 0.95, 0.95, 0.95), _row("PGD", 0.95, 0.3, 0.5, 0.2)]
    assert attacks_hurt(_report(table1=mixed))[2].startswith("partly")


def test_mim_is_strongest_only_when_its_paired_advantage_is_clear():
    rows = [_row("FGSM", 0.95, 0.6, 0.7, 0.5), _row("PGD", 0.95, 0.3, 0.5, 0.4), _row("MIM", 0.95, 0.2, 0.5, 0.1)]
    assert mim_strongest(_report(table1=rows))[2] == "reproduced"
    rows[2] = _row("MIM", 0.95, 0.2, 0.5, 0.4)  # a tie with PGD: no number of clips settles it
    assert "sits on the threshold" in mim_strongest(_report(table1=rows))[2]
    rows[2] = _row("MIM", 0.95, 0.2, 0.5, 0.7)
    assert mim_strongest(_report(table1=rows))[2] == "not reproduced"


def test_fusion_ranking_and_ri_by_paired_bootstrap():
    def fusion(name, share):
        return {"split": "test", "fusion": f"av-{name}", "✗AV": share, "intervals": {"✗AV": [share - 0.1, share + 0.1]},
                "per_clip": {"✗AV": _flags(share)}}
    fusions = [fusion(n, v) for n, v in (("sum", 0.1), ("concat", 0.6), ("film", 0.2), ("gated-sum", 0.3),
                                          ("gated-concat", 0.55))]
    assert concat_fusions_most_robust(_report(table2=fusions))[2] == "reproduced"
    fusions[2] = fusion("film", 0.8)
    assert concat_fusions_most_robust(_report(table2=fusions))[2].startswith("not reproduced")

    def defense(name, clean, attacked):
        row = _row("FGSM", clean, attacked, attacked, attacked, defense=name)
        row.update(RI=0.0, intervals={"RI": [0.0, 0.0]})
        return row
    defenses = [defense("None", 0.9, 0.3), defense("MinSim", 0.9, 0.4), defense("MinSim + ExFMem (reference ISTA)", 0.9, 0.8)]
    for row in defenses:
        row["RI"] = row["✓AV"] + row["Avg"] - 1.2
    assert full_defense_best_ri(_report(table3=defenses))[2] == "reproduced"
    defenses[1] = defense("MinSim", 0.95, 0.95)
    defenses[1]["RI"] = 0.7
    assert full_defense_best_ri(_report(table3=defenses))[2].startswith("not reproduced")


def test_crossing_and_localization_follow_their_paired_intervals():
    eps = [0, 0.01, 0.02]

    def curve(series, shares):
        return {"split": "test", "series": series, "eps": eps, "accuracy": shares, "per_clip": [_flags(v) for v in shares]}
    curves = [curve("✗A (av-concat, audio attacked)", [0.95, 0.6, 0.1]), curve("✗V (av-concat, visual attacked)", [0.95, 0.9, 0.9]),
              curve("Unimodal ✓V (clean)", [0.4] * 3), curve("Unimodal ✓A (clean)", [0.8] * 3)]
    rule, numbers, verdict = unimodal_crossing(_report(curves=curves))
    assert verdict.startswith("partly") and "reproduced for test ✗A" in verdict and "not reproduced for test ✗V" in verdict

    def condition(name, pointing):
        per_clip = [1.0] * round(pointing * 90) + [0.0] * (90 - round(pointing * 90))
        return {"split": "test", "model": "av-attention", "budget": "caption", "condition": name,
                "pointing_game": pointing, "per_clip": {"pointing_game": per_clip}}
    rows = [condition(c, p) for c, p in (("✓AV", 0.9), ("✗A", 0.5), ("✗V", 0.4), ("✗AV", 0.3))]
    assert localization_fooled(_report(localization=rows))[2] == "reproduced"
    rows[1] = condition("✗A", 0.88)
    assert localization_fooled(_report(localization=rows))[2].startswith("partly")


def test_rows_of_an_older_report_without_per_clip_outcomes_are_not_judged():
    row = _row("PGD", 0.95, 0.3, 0.5, 0.2)
    del row["per_clip"]
    assert attacks_hurt(_report(table1=[row]))[2] == "not measured"


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
