"""Class-wise robustness metrics against hand-computed values on hand-built point clouds."""

from __future__ import annotations

import math

import pytest
import torch

from avdemo.measures import classwise
from avdemo.measures.classwise import (accuracy_drop, class_density, feature_convexity, input_convexity, log_volume,
                                       per_class_accuracy, trend)


def test_log_volume_closed_forms():
    radius = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(log_volume(1, radius), torch.log(2 * radius))
    torch.testing.assert_close(log_volume(2, radius), torch.log(math.pi * radius**2))
    torch.testing.assert_close(log_volume(3, radius), torch.log(4 / 3 * math.pi * radius**3))
    assert torch.isfinite(log_volume(4096, radius)).all()
    assert log_volume(2, torch.tensor(0.0)) == -math.inf


def _cross(distances: list[float]) -> torch.Tensor:
    """2-D points (+-r, 0) and (0, +-r) for each r: their centroid is exactly the origin."""
    return torch.tensor([p for r in distances for p in ((r, 0), (-r, 0), (0, r), (0, -r))], dtype=torch.float64)


def test_class_density_by_hand():
    # Class 0: distances 1 x4, 3 x4 -> median (linear) R = 2, crust n = 4, V = 4 pi.
    # Class 1: the same shape at half the scale -> R = 1, n = 4: denser by 2 log 2.
    # Class 2: a single sample -> NaN.
    shift = torch.tensor([5.0, -7.0], dtype=torch.float64)
    features = torch.cat([_cross([1, 3]) + shift, _cross([0.5, 1.5]), torch.zeros(1, 2, dtype=torch.float64)])
    labels = torch.tensor([0] * 8 + [1] * 8 + [2])
    density = class_density(features, labels, 3)
    assert density[0].item() == pytest.approx(math.log(4) - math.log(4 * math.pi))
    assert (density[1] - density[0]).item() == pytest.approx(2 * math.log(2))
    assert math.isnan(density[2])
    # 1-D, distances 1, 1, 2, 2, 3, 3: R = 2 and only the two at 3 are strictly beyond it.
    line = torch.tensor([[1.0], [-1.0], [2.0], [-2.0], [3.0], [-3.0]])
    assert class_density(line, torch.zeros(6, dtype=torch.long), 1)[0].item() == pytest.approx(math.log(2 / 4))
    # tau = 0.25: position 1.75 of 1, 1, 1, 1, 3, ... -> R = 1, crust = the four at 3.
    assert class_density(features, labels, 3, quantile=0.25)[0].item() == pytest.approx(math.log(4 / math.pi))


def test_class_density_projection():
    # The hand-built plane cloud embedded in 5-D: 2 principal directions give the 2-D answer.
    plane = torch.cat([_cross([1, 3]), _cross([0.5, 1.5]) + 4])
    labels = torch.tensor([0] * 8 + [1] * 8)
    basis = torch.linalg.qr(torch.randn(5, 2, dtype=torch.float64)).Q
    embedded = plane @ basis.T + torch.randn(5, dtype=torch.float64)
    torch.testing.assert_close(class_density(embedded, labels, 2, components=2), class_density(plane, labels, 2))
    assert not torch.allclose(class_density(embedded, labels, 2), class_density(plane, labels, 2))

    features, labels = torch.randn(40, 512), torch.arange(40) % 2
    assert torch.isfinite(class_density(features, labels, 2, components=8)).all()
    torch.testing.assert_close(class_density(features, labels, 2, components=512), class_density(features, labels, 2))


def _column(x: float, count: int) -> torch.Tensor:
    """`count` points on the vertical segment at x, y in [-1, 1]."""
    return torch.stack([torch.full((count,), x), torch.linspace(-1, 1, count)], dim=1)


def test_feature_convexity_blobs():
    features = torch.cat([_column(-10, 10), _column(10, 10)])
    labels = torch.tensor([0] * 10 + [1] * 10)  # class 2 absent
    kappa = feature_convexity(features, labels, 3, points=500, generator=torch.Generator().manual_seed(0))
    assert kappa[:2].tolist() == [1.0, 1.0] and math.isnan(kappa[2])


def test_feature_convexity_split_class(monkeypatch):
    # A at x = -10 and +10, B at x = 0. A pair from different A clusters (10/19 of pairs, as the
    # two ends are distinct) mixes to x ~ U[-10, 10], voted B where |x| < 5: kappa_A = 1 - 5/19.
    features = torch.cat([_column(-10, 10), _column(10, 10), _column(0, 10)])
    labels = torch.tensor([0] * 20 + [1] * 10)
    kappa = feature_convexity(features, labels, 2, generator=torch.Generator().manual_seed(0))
    assert kappa[1] == 1.0
    assert abs(kappa[0] - (1 - 5 / 19)) < 0.04  # ~4 standard errors at 2000 points
    # Two A samples only: every pair straddles B -> kappa_A = 1/2 (3/4 if a sample could pair with itself).
    ends = torch.tensor([[-10.0, 0], [10, 0]])
    two = feature_convexity(torch.cat([ends, _column(0, 5)]), torch.tensor([0, 0] + [1] * 5), 2, neighbours=1,
                            generator=torch.Generator().manual_seed(0))
    assert abs(two[0] - 0.5) < 0.05
    # Chunking the distances does not change the answer.
    monkeypatch.setattr(classwise, "_CHUNK_ELEMENTS", 7 * len(features))
    chunked = feature_convexity(features, labels, 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(chunked, kappa)


class _Clips:
    """Clips whose waveform is constant w and whose frames are constant (w + 1) / 2."""

    def __init__(self, levels: list[float]):
        self.levels = torch.tensor(levels)
        self.calls: list[int] = []

    def load(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls.append(len(indices))
        level = self.levels[indices]
        return level[:, None].expand(-1, 8), ((level + 1) / 2).view(-1, 1, 1, 1, 1).expand(-1, 2, 3, 2, 2)


def _sign_classify(waveform: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Class 1 where the waveform is positive; checks one theta mixed both modalities."""
    assert not torch.is_grad_enabled()
    assert waveform.min() >= -1 and waveform.max() <= 1 and frames.min() >= 0 and frames.max() <= 1
    torch.testing.assert_close(frames.flatten(1).mean(1), (waveform.mean(1) + 1) / 2)
    return (waveform.mean(1) > 0).long()


def test_input_convexity_one_side_each():
    clips = _Clips([-1.0, -0.5, -0.2, 0.3, 0.9])
    labels = torch.tensor([0, 0, 0, 1, 1])
    kappa = input_convexity(_sign_classify, clips.load, labels, 3, points=100, batch_size=32,
                            generator=torch.Generator().manual_seed(0))
    assert kappa[:2].tolist() == [1.0, 1.0] and math.isnan(kappa[2])
    assert clips.calls == [32, 32, 32, 32, 32, 32, 4, 4] * 2


def test_input_convexity_straddling_class():
    # Class 0 = clips at -1 and +0.5 (always paired together): the mix is positive, so predicted
    # 1, on the third of the segment nearest +0.5 -> kappa_0 = 2/3.
    clips = _Clips([-1.0, 0.5, 0.2, 0.9])
    labels = torch.tensor([0, 0, 1, 1])
    with torch.enable_grad():
        kappa = input_convexity(_sign_classify, clips.load, labels, 2, generator=torch.Generator().manual_seed(0))
    assert abs(kappa[0] - 2 / 3) < 0.05 and kappa[1] == 1.0
    assert torch.is_grad_enabled()


def test_accuracy_drop_by_hand():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    clean = torch.tensor([0, 0, 0, 1, 1, 1, 2])
    attacked = torch.tensor([0, 1, 1, 1, 1, 0, 0])
    assert per_class_accuracy(labels, clean, 4)[:3].tolist() == [0.75, 1.0, 1.0]
    drop = accuracy_drop(labels, clean, attacked, 4)
    assert drop[:3].tolist() == [0.5, 0.5, 1.0] and math.isnan(drop[3])


def test_trend():
    x = torch.tensor([0.0, 1, 2, 3, math.nan, 5, 6])
    y = [1.0, 3, 5, 7, 9, math.inf, 13]
    line = trend(x, y)
    assert line["n"] == 5
    assert line["slope"] == pytest.approx(2) and line["intercept"] == pytest.approx(1)
    assert line["spearman"] == pytest.approx(1) and line["pearson"] == pytest.approx(1)
    # y = 1, 3, 2, 4: slope cov/var = 4/5, intercept 0.5, r = rho = 0.8; with n - 2 = 2 degrees of
    # freedom the two-sided t-test p-value is exactly 1 - rho.
    noisy = trend([1, 2, 3, 4], [1, 3, 2, 4])
    assert noisy["slope"] == pytest.approx(0.8) and noisy["intercept"] == pytest.approx(0.5)
    assert noisy["pearson"] == pytest.approx(0.8) and noisy["spearman"] == pytest.approx(0.8)
    assert noisy["spearman_p"] == pytest.approx(0.2)
    short = trend([1.0, 2.0, math.nan], [1.0, 2.0, 3.0])
    assert short["n"] == 2 and math.isnan(short["slope"])
