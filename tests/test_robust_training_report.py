"""The robust-training report's verdicts follow their fixed rules on hand-made numbers."""

from __future__ import annotations

import copy

from avdemo.evaluation.intervals import wilson_interval
from avdemo.evaluation.robust_training import markdown, verdicts


def _rate(correct: int, clips: int = 360) -> dict:
    return {"accuracy": correct / clips, "interval": list(wilson_interval(correct, clips)), "clips": clips}


def _entry(clean: int, worst: int, minutes: float | None = None) -> dict:
    return {"clean": _rate(clean), "pgd": _rate(worst), "mim": _rate(worst), "tma": _rate(worst), "transfer": None,
            "worst_case": _rate(worst), "training_minutes": minutes, "hardware": "test", "role": "defense"}


def _report(**worst) -> tuple[dict, dict]:
    numbers = {"av-concat": 6, "av-minsim": 8, "av-concat-pgdat": 200, "av-concat-avat": 50, "av-concat-mixup": 8,
               "audio-only": 17, "visual-only": 3, **worst}
    minutes = {"av-concat-pgdat": 2.1, "av-concat-avat": 2.5}
    report = {"clips_per_class": 20, "defenses": {name: _entry(352, value, minutes.get(name))
                                                    for name, value in numbers.items()}}
    fit = {"slope": 0.5, "intercept": 0.1, "spearman": 0.24, "spearman_p": 0.34, "pearson": 0.2, "n": 18}
    classwise = {"clips_per_class": 20, "trend": {"convexity_input": fit}, "model": "av-concat", "convexity_points": 200,
                 "attack": "PGD-10, paper preset, both modalities",
                 "per_class": []}
    return report, classwise


def _verdict(found: list[dict], start: str) -> str:
    return next(v["verdict"] for v in found if v["claim"].startswith(start))


def test_adversarial_training_beats_the_cvpr_defenses_only_with_disjoint_intervals():
    report, classwise = _report()
    found = verdicts(report, classwise)
    assert _verdict(found, "Adversarial training") == "holds"
    report, classwise = _report(**{"av-concat-avat": 10})
    assert _verdict(verdicts(report, classwise), "Adversarial training") == "holds for av-concat-pgdat"
    report, classwise = _report(**{"av-concat-pgdat": 8, "av-concat-avat": 7})
    assert _verdict(verdicts(report, classwise), "Adversarial training") == "does not hold"


def test_the_framework_claim_needs_less_time_and_as_much_robustness():
    report, classwise = _report()
    assert _verdict(verdicts(report, classwise), "The ICLR 2025") == "does not hold"  # slower and far less robust
    report, classwise = _report(**{"av-concat-avat": 205})
    report["defenses"]["av-concat-avat"]["training_minutes"] = 1.0
    assert _verdict(verdicts(report, classwise), "The ICLR 2025") == "holds"
    report["defenses"]["av-concat-avat"]["worst_case"] = _rate(195)
    assert _verdict(verdicts(report, classwise), "The ICLR 2025").startswith("inconclusive at 360")


def test_mixup_and_unimodal_and_convexity_rules():
    report, classwise = _report(**{"av-concat-mixup": 40})
    found = verdicts(report, classwise)
    assert _verdict(found, "Mixup") == "holds"
    assert _verdict(found, "Multimodal models") == "holds"  # audio-only 17 > av-concat 6
    assert _verdict(found, "kappa_c").startswith("inconclusive at 18 classes")
    worse = copy.deepcopy(report)
    worse["defenses"]["av-concat-mixup"]["worst_case"] = _rate(5)
    assert _verdict(verdicts(worse, classwise), "Mixup") == "does not hold"
    report, classwise = _report(**{"audio-only": 0, "visual-only": 0, "av-concat": 60})
    classwise["trend"]["convexity_input"].update(spearman=-0.7, spearman_p=0.001)
    found = verdicts(report, classwise)
    assert _verdict(found, "Multimodal models") == "does not hold"
    assert _verdict(found, "kappa_c") == "holds"
    assert "| av-concat-pgdat |" in markdown({**report, "verdicts": found}, classwise)
