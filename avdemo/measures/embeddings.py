"""Live t-SNE maps of a model's embeddings, as the paper's Figures 5-6 but interactive.

A map is fitted once per model on its reference set (test clips shipped with the zoo):
audio and visual features share one map (they have the same size, and the paper draws them
together), fused features get their own. A new clip's clean and attacked features are then
*placed* into the fitted maps with openTSNE's `transform`, without refitting, so the
reference points stay where they are and the attack's displacement is visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from openTSNE import TSNE, TSNEEmbedding


@dataclass
class EmbeddingMap:
    """One fitted map: reference points `(N, 2)`, their labels `(N,)` and modality names."""

    embedding: TSNEEmbedding
    points: np.ndarray
    labels: np.ndarray
    modalities: np.ndarray

    def place(self, features: np.ndarray) -> np.ndarray:
        """Positions `(M, 2)` of new features `(M, d)` in this map (the map is not refitted)."""
        return np.asarray(self.embedding.transform(np.asarray(features, np.float64), n_iter=100))


def fit_map(features: dict[str, torch.Tensor | np.ndarray], labels: torch.Tensor | np.ndarray, seed: int = 0,
            perplexity: float = 30.0) -> EmbeddingMap:
    """Fit a map on reference features of one or more modalities with the same size.

    features: modality -> `(N, d)`; labels `(N,)`. Cosine distances, as features are ReLU
    outputs whose scale varies more than their direction.
    """
    names, blocks = zip(*[(name, np.asarray(value, np.float64)) for name, value in features.items()])
    data = np.concatenate(blocks)
    label_array = np.tile(np.asarray(labels), len(blocks))
    modalities = np.repeat(np.array(names), [len(b) for b in blocks])
    tsne = TSNE(n_components=2, perplexity=min(perplexity, (len(data) - 1) / 3), metric="cosine",
                random_state=seed, n_jobs=1, verbose=False)
    embedding = tsne.fit(data)
    return EmbeddingMap(embedding, np.asarray(embedding), label_array, modalities)


def fit_reference_maps(reference: dict[str, torch.Tensor], seed: int = 0) -> dict[str, EmbeddingMap]:
    """The maps of a zoo model's reference set: "audio-visual" (audio and visual features
    together, where the model has both), else the single modality; and "fused" for AV models."""
    labels = reference["label"]
    unimodal = {name: reference[name] for name in ("audio", "visual") if name in reference}
    maps = {}
    if len(unimodal) == 2:
        maps["audio-visual"] = fit_map(unimodal, labels, seed)
        maps["fused"] = fit_map({"fused": reference["fused"]}, labels, seed)
    else:
        (name, value), = unimodal.items()
        maps[name] = fit_map({name: value}, labels, seed)
    return maps
