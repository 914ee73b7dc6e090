"""Multimodal mixup (Li et al., ICASSP 2022): mix examples at the fusion layer, with a
per-class temperature set from the class-wise density and convexity metrics, as a cheap
alternative to adversarial training.

The poster gives the idea ("augment the less convex classes with more samples from the denser
samples, closer to the centre of its feature space"; "tune the mixup temperature according to
the density and convexity metrics"), not its constants. Our choices:
- *When the statistics are taken*: once, from the starting model (the undefended av-concat),
  on the first `mixup_reference_per_class` training clips per class: each class's centroid of
  fused features, its log density rho_c (`avdemo.measures.classwise.class_density`, tau = 0.5)
  and its convexity kappa_c on the inputs (`input_convexity`, `mixup_convexity_points` points).
- *Each class's need* s_c in [0, 1]: the mean of its rank among the classes by low convexity
  and by low density (0 for the most convex and dense class, 1 for the least).
- *Temperature*: the mixing weight lambda ~ Beta(alpha_c, alpha_c) with alpha_c from
  `mixup_alpha_low` to `mixup_alpha_high` as s_c goes from 0 to 1 (a higher temperature puts
  lambda nearer 1/2: stronger mixing for the classes that need it).
- *Partner*: with probability s_c the partner is the class's dense prototype (the mean fused
  feature of its reference clips inside the tau ball: the "denser samples closer to the
  centre"), and the label stays c, which fills in the class's region; otherwise another clip
  of the batch, with labels mixed as in ordinary mixup.
- *Where*: the fused feature, the classifier's input (the fusion layer), so the audio and the
  visual feature are mixed together; the loss is weight x the mixed cross-entropy, added to the
  model's usual training loss on the clean clips (so clean accuracy is trained as before).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..data.shards import first_per_class
from ..measures.classwise import class_density, input_convexity
from .adversarial_training import PROCEDURE_OBJECTIVES
from .registry import Defense, TrainingProcedure, register_defense

DENSITY_QUANTILE = 0.5


def rank_share(values: torch.Tensor) -> torch.Tensor:
    """Each value's rank among `values` `(K,)` as a share in [0, 1] (0 for the smallest; NaN last)."""
    order = torch.nan_to_num(values, nan=float("inf")).argsort().argsort().float()
    return order / max(len(values) - 1, 1)


class FusionMixup(TrainingProcedure):
    """Mixup of fused features with per-class temperatures from density and convexity."""

    def __init__(self, recipe):
        self.recipe = recipe
        self.generator = torch.Generator().manual_seed(recipe.seed + 11)
        self.statistics: dict[str, list] = {}

    @torch.no_grad()
    def prepare(self, model, train_set, device) -> None:
        reference = first_per_class(train_set, self.recipe.mixup_reference_per_class)
        model.eval()
        fused, labels = [], []
        for batch in DataLoader(reference, batch_size=64):
            fused.append(model(batch["waveform"].to(device), batch["frames"].to(device)).fused.float().cpu())
            labels.append(batch["label"])
        fused, labels = torch.cat(fused), torch.cat(labels)
        classes = len(train_set.classes)
        density = class_density(fused, labels, classes, DENSITY_QUANTILE)

        def load(indices):
            items = [reference[i] for i in indices]
            return torch.stack([i["waveform"] for i in items]), torch.stack([i["frames"] for i in items])

        def classify(waveform, frames):
            return model(waveform.to(device), frames.to(device)).logits.argmax(-1).cpu()

        convexity = input_convexity(classify, load, labels, classes, self.recipe.mixup_convexity_points,
                                    generator=torch.Generator().manual_seed(self.recipe.seed + 13))
        need = (rank_share(-convexity) + rank_share(-density)) / 2  # the least convex and dense need the most
        low, high = self.recipe.mixup_alpha_low, self.recipe.mixup_alpha_high
        prototypes = []
        for c in range(classes):
            own = fused[labels == c]
            distance = (own - own.mean(0)).norm(dim=1)
            prototypes.append(own[distance <= distance.quantile(DENSITY_QUANTILE)].mean(0))
        self.statistics = {"log_density": density.tolist(), "input_convexity": convexity.tolist(),
                           "need": need.tolist(), "alpha": (low + (high - low) * need).tolist()}
        self.prototypes = torch.stack(prototypes).to(device)
        model.train()

    def extra_loss(self, model, output, labels):
        """Output of the training forward (fused `(B, D)`), labels `(B,)` -> weight x the mixed
        cross-entropy per clip `(B,)` (a batch of one clip mixes with its prototype only)."""
        batch, device = len(labels), labels.device
        chosen = labels.cpu()
        need = torch.tensor(self.statistics["need"])[chosen]
        alpha = torch.tensor(self.statistics["alpha"])[chosen]
        weight = torch.distributions.Beta(alpha, alpha).sample().to(device)  # (B,): lambda, the anchor's share
        toward_prototype = (torch.rand(batch, generator=self.generator) < need) | (batch == 1)
        partner_index = (torch.arange(batch) + torch.randint(1, max(batch, 2), (batch,), generator=self.generator)) % batch
        toward_prototype, partner_index = toward_prototype.to(device), partner_index.to(device)
        fused = output.fused
        partner = torch.where(toward_prototype[:, None], self.prototypes[labels].to(fused.dtype), fused[partner_index])
        partner_labels = torch.where(toward_prototype, labels, labels[partner_index])
        share = weight[:, None].to(fused.dtype)
        logits = model.classifier(share * fused + (1 - share) * partner)
        loss = weight * F.cross_entropy(logits, labels, reduction="none") + (1 - weight) * F.cross_entropy(
            logits, partner_labels, reduction="none")
        return self.recipe.mixup_weight * loss

    def describe(self) -> dict:
        r = self.recipe
        return {"where": "fused features (the classifier's input)", "reference_clips_per_class": r.mixup_reference_per_class,
                "convexity_points": r.mixup_convexity_points, "alpha_low": r.mixup_alpha_low,
                "alpha_high": r.mixup_alpha_high, "weight": r.mixup_weight, "density_quantile": DENSITY_QUANTILE,
                **self.statistics}


register_defense(Defense(
    key="mixup", name="Multimodal mixup", kind="training procedure", entry="av-concat-mixup",
    objectives=PROCEDURE_OBJECTIVES, make_procedure=FusionMixup,
    description="av-concat fine-tuned with mixup at the fusion layer, per-class temperatures from density and "
                "convexity (Li et al., ICASSP 2022)"))
