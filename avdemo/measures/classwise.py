"""Class-wise robustness (Li et al., ICASSP 2022, "Class-wise Robustness Metric"): how dense
and how convex each class is, against how much accuracy an attack takes from it.

The poster gives the idea, not every constant; what is chosen here:

- Density rho_c: the poster's n_c / log V_d(R) changes sign where V_d(R) < 1 and means
  nothing in high dimension, so `class_density` gives the LOG density log n_c - log V_d(R)
  (log of count over ball volume). Distances are L2 (p = 2) to the class mean. R is the tau
  quantile of those distances with linear interpolation (`torch.quantile`); the crust n_c
  counts the distances strictly above R. NaN for a class of fewer than 2 samples or R = 0,
  -inf for an empty crust. Optional PCA: all features centred on their global mean and
  projected onto their top principal directions (exact SVD, so deterministic), with
  d = components.
- Convexity kappa_c: n = 2000 points per class as in the poster. Each point mixes two distinct
  samples of the class (the same one only for a class of one) with one theta ~ U[0, 1] per pair,
  the same for audio and video. On features the point is labelled by a k-NN vote, k = 5, among
  all features (the endpoints included); vote ties go to the smallest class index. On inputs it
  is labelled by the model.
- The accuracy drop is absolute (clean minus attacked accuracy), not relative to clean.
- `trend` fits the poster's "performance drop vs kappa_c" line over the finite pairs only.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

# Distance entries computed at once by `feature_convexity` (32 MiB of float64).
_CHUNK_ELEMENTS = 2**22


def log_volume(dim: int, radius: torch.Tensor) -> torch.Tensor:
    """log V_d(R) = (d/2) log pi - lgamma(d/2 + 1) + d log R of the L2 ball, for radii `(...)`
    >= 0 (-inf at 0); in log space, so finite for any d where a plain volume would overflow."""
    if dim < 1:
        raise ValueError(f"the dimension must be at least 1, got {dim}")
    return dim / 2 * math.log(math.pi) - math.lgamma(dim / 2 + 1) + dim * torch.log(radius)


def class_density(features: torch.Tensor, labels: torch.Tensor, num_classes: int, quantile: float = 0.5,
                  components: int | None = None) -> torch.Tensor:
    """Log crust density log n_c - log V_d(R_tau,c) `(K,)` float64 (higher = denser) of features
    `(N, D)` with labels `(N,)` in [0, K); tau = `quantile` in [0, 1].

    components: project onto this many principal directions first (1 <= components <= D) and
    use d = components; directions past the rank of the data carry nothing, so components = D
    keeps every distance.
    """
    if not 0 <= quantile <= 1:
        raise ValueError(f"the quantile must be in [0, 1], got {quantile}")
    points = features.double()
    dim = points.shape[1]
    if components is not None:
        if not 1 <= components <= dim:
            raise ValueError(f"components must be in [1, {dim}], got {components}")
        centred = points - points.mean(dim=0)
        directions = torch.linalg.svd(centred, full_matrices=False).Vh[:components]
        points, dim = centred @ directions.T, components
    density = torch.full((num_classes,), math.nan, dtype=torch.float64)
    for c in range(num_classes):
        members = points[labels == c]
        if len(members) < 2:
            continue
        distances = (members - members.mean(dim=0)).norm(dim=1)
        radius = torch.quantile(distances, quantile)
        if radius > 0:
            crust = (distances > radius).sum().double()
            density[c] = torch.log(crust) - log_volume(dim, radius)
    return density


def _pairs(count: int, points: int, generator: torch.Generator | None
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`points` pairs of positions in [0, count), distinct unless count = 1, and their theta
    `(points,)` float64 in [0, 1)."""
    first = torch.randint(count, (points,), generator=generator)
    second = first
    if count > 1:
        second = (first + 1 + torch.randint(count - 1, (points,), generator=generator)) % count
    return first, second, torch.rand(points, generator=generator, dtype=torch.float64)


def _mix(a: torch.Tensor, b: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """theta a + (1 - theta) b, one theta `(n,)` per row of a and b `(n, ...)`."""
    theta = theta.to(a.device, a.dtype).view(-1, *[1] * (a.dim() - 1))
    return theta * a + (1 - theta) * b


def feature_convexity(features: torch.Tensor, labels: torch.Tensor, num_classes: int, points: int = 2000,
                      neighbours: int = 5, generator: torch.Generator | None = None) -> torch.Tensor:
    """kappa_c `(K,)` float64 in [0, 1] (NaN for an absent class): the share of `points` mixes
    of class-c features `(N, D)` that a `neighbours`-NN vote among all features labels c.

    k-NN because any linear or nearest-centroid classifier has convex class regions, where
    kappa would be 1 by construction; labels `(N,)` in [0, K).
    """
    if not 1 <= neighbours <= len(features):
        raise ValueError(f"neighbours must be in [1, {len(features)}], got {neighbours}")
    rows = max(1, _CHUNK_ELEMENTS // len(features))
    kappa = torch.full((num_classes,), math.nan, dtype=torch.float64)
    for c in range(num_classes):
        members = features[labels == c]
        if len(members) == 0:
            continue
        first, second, theta = _pairs(len(members), points, generator)
        mixes = _mix(members[first], members[second], theta)
        hits = 0
        for start in range(0, points, rows):
            nearest = torch.cdist(mixes[start:start + rows], features).topk(neighbours, largest=False).indices
            votes = F.one_hot(labels[nearest], num_classes).sum(dim=1)
            hits += int((votes.argmax(dim=1) == c).sum())
        kappa[c] = hits / points
    return kappa


def input_convexity(classify: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                    load: Callable[[list[int]], tuple[torch.Tensor, torch.Tensor]], labels: torch.Tensor,
                    num_classes: int, points: int = 2000, batch_size: int = 64,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """kappa_c `(K,)` float64 in [0, 1] (NaN for an absent class): the share of `points` mixed
    class-c clips that the model predicts as c; labels `(N,)` in [0, K).

    load(indices) -> waveform `(n, L)` in [-1, 1], frames `(n, T, 3, H, W)` in [0, 1];
    classify(waveform, frames) -> predicted class `(n,)`, called without gradients on at most
    `batch_size` mixes (two `load` calls per batch, one per endpoint).
    """
    kappa = torch.full((num_classes,), math.nan, dtype=torch.float64)
    with torch.no_grad():
        for c in range(num_classes):
            members = (labels == c).nonzero().squeeze(1)
            if len(members) == 0:
                continue
            first, second, theta = _pairs(len(members), points, generator)
            hits = 0
            for start in range(0, points, batch_size):
                batch = slice(start, start + batch_size)
                wave_a, frames_a = load(members[first[batch]].tolist())
                wave_b, frames_b = load(members[second[batch]].tolist())
                predicted = classify(_mix(wave_a, wave_b, theta[batch]), _mix(frames_a, frames_b, theta[batch]))
                hits += int((predicted == c).sum())
            kappa[c] = hits / points
    return kappa


def per_class_accuracy(labels: torch.Tensor, predicted: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Accuracy `(K,)` float64 in [0, 1] of each class (NaN where absent), from labels and
    predictions `(N,)` in [0, K)."""
    total = torch.bincount(labels, minlength=num_classes).double()
    correct = torch.bincount(labels[predicted == labels], minlength=num_classes).double()
    return torch.where(total > 0, correct / total.clamp_min(1), math.nan)


def accuracy_drop(labels: torch.Tensor, clean_predicted: torch.Tensor, attacked_predicted: torch.Tensor,
                  num_classes: int) -> torch.Tensor:
    """Clean minus attacked accuracy `(K,)` float64 in [-1, 1] per class (NaN where absent),
    from labels and both predictions `(N,)` in [0, K); positive = the attack hurts."""
    return (per_class_accuracy(labels, clean_predicted, num_classes)
            - per_class_accuracy(labels, attacked_predicted, num_classes))


def trend(x: Sequence[float] | torch.Tensor, y: Sequence[float] | torch.Tensor) -> dict:
    """Least-squares line y = slope x + intercept, Spearman rho and its two-sided p-value,
    Pearson r, and n, over the pairs where x and y `(K,)` are both finite.

    Every statistic is NaN with fewer than 3 pairs or a constant x (no trend to fit); the
    correlations are also NaN for a constant y.
    """
    xs, ys = np.asarray(x, np.float64), np.asarray(y, np.float64)
    finite = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[finite], ys[finite]
    result = {"slope": math.nan, "intercept": math.nan, "spearman": math.nan, "spearman_p": math.nan,
              "pearson": math.nan, "n": int(finite.sum())}
    if len(xs) < 3 or np.ptp(xs) == 0:
        return result
    slope, intercept = np.polyfit(xs, ys, 1)
    result.update(slope=float(slope), intercept=float(intercept))
    if np.ptp(ys) > 0:
        from scipy import stats  # imported here: scipy takes a second to import

        spearman = stats.spearmanr(xs, ys)
        result.update(spearman=float(spearman.statistic), spearman_p=float(spearman.pvalue),
                      pearson=float(stats.pearsonr(xs, ys).statistic))
    return result
