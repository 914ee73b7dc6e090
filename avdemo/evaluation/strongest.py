"""The strongest attack as the yardstick: for each model, the share of clips still classified
right under the per-clip worst case over every attack and objective we have at one budget.

The attacks: white-box PGD-10, MIM-10 and TMA (TIA for a one-modality network, which has no
cosine to misalign), each through every objective the model's defense lists (plain
cross-entropy, its training term, BPDA through an inference-time wrapper) and crafted on the
undefended model (transfer). A clip counts only if the model gets it right clean and under all
of them: the clean input lies inside every budget ball. This is the number a defense is judged by.

White-box attacks keep each clip's first iterate the model gets wrong (a clip wrong at any
iterate is broken); transfer attacks run every step. The attacks run as a cascade, cheapest
first: a clip one attack already breaks is wrong under the worst case whatever follows, so
later attacks run only on the clips still standing. The per-attack counts say how many clips
each attack broke that the ones before it left standing: an attack that breaks none adds
nothing at this budget.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from ..attacks import budget_settings
from ..zoo import describe
from .engine import Condition, Engine
from .intervals import wilson_interval
from .report import outcome_bits

TMA_SETTINGS = dict(lambda_temporal=0.1, lambda_misalign=0.01, transforms=("mask",), copies=4)
"""TMA as the transfer sweep (issue 14) chose it."""
ATTACKS = ("pgd", "mim", "tma")
LABELS = {"pgd": "PGD-10", "mim": "MIM-10", "tma": "TMA", "tia": "TIA"}


def condition(attack: str, budget: str, one_modality: bool = False) -> Condition:
    """One attack of the cascade on both modalities at a named budget, white-box runs keeping
    each clip's first fooling iterate; TMA becomes TIA for a network that sees one modality."""
    if attack != "tma":
        return Condition.named(attack, budget, "both", first_fooling=True)
    return Condition("tia" if one_modality else "tma", budget, "both", budget_settings(budget, "both", **TMA_SETTINGS),
                     first_fooling=True)


def strongest_rows(engine: Engine, models: Sequence[str], split: str, budget: str, log=print) -> list[dict]:
    """Per model: clean accuracy, each attack's own worst case over its objectives (the first
    attack's on every clip; later ones only on the clips still standing), the clips each attack
    broke first, and the worst case over all of them, with 95 % Wilson intervals over clips."""
    clips = engine.clip_ids(split)
    standing = {m: {row["clip"] for row in engine.clean(m, split) if row["correct"]} for m in models}
    clean = {m: len(standing[m]) for m in models}
    broke: dict[str, dict[str, int]] = {m: {} for m in models}
    objectives: dict[str, set[str]] = defaultdict(set)
    one_modality = {m: describe(m)["config"]["kind"] != "av" for m in models}
    for attack in ATTACKS:
        groups: dict[Condition, list[str]] = defaultdict(list)
        for model in models:
            groups[condition(attack, budget, one_modality[model])].append(model)
        for cond, victims in groups.items():
            results = engine.attacked(victims, cond, split, needed={v: set(standing[v]) for v in victims})
            for victim in victims:
                fallen = set()
                for objective, rows in results[victim].items():
                    objectives[victim].add(objective)
                    fallen |= {row["clip"] for row in rows if row is not None and row["clip"] in standing[victim]
                               and not row["correct"]}
                standing[victim] -= fallen
                broke[victim][LABELS[cond.attack]] = len(fallen)
                log(f"  strongest {split} {budget} {victim} {LABELS[cond.attack]}: broke {len(fallen)}, "
                    f"{len(standing[victim])}/{len(clips)} standing")
    rows = []
    for model in models:
        first = clean[model] - broke[model][LABELS["pgd"]]
        rows.append({"split": split, "budget": budget, "model": model, "role": describe(model).get("role"),
                     "clean": clean[model] / len(clips), "PGD-10": first / len(clips),
                     "strongest": len(standing[model]) / len(clips), "clips": len(clips),
                     "broken_first_by": broke[model], "objectives_tried": ", ".join(sorted(objectives[model])),
                     "intervals": {"clean": wilson_interval(clean[model], len(clips)),
                                   "PGD-10": wilson_interval(first, len(clips)),
                                   "strongest": wilson_interval(len(standing[model]), len(clips))},
                     "per_clip": {"strongest": outcome_bits(clip in standing[model] for clip in clips)}})
    return rows
