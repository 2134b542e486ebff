"""Concept balancing: spherical k-means clusters of kept clips and a sampling weight per clip.

A clip's balancing weight is N / (k · size of its cluster), capped at `max_balance_weight` and
renormalised to mean 1, so rare concepts are drawn about as often as common ones. k-means runs in
faiss (`faiss.Kmeans`, spherical: unit centroids, cosine geometry), which subsamples at most 256
rows per centroid per iteration, so its cost grows with k, not with N.
"""

from __future__ import annotations

import faiss
import numpy as np

from curation.config import DedupConfig


def balance_weights(unit: np.ndarray, config: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """(N,) int64 cluster and (N,) float64 weight (mean 1) of the L2-normalised rows `unit` (N, D).

    k = min(`n_clusters`, N // 3), at least 1: few clips get few clusters.
    """
    n = len(unit)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    k = max(1, min(config.n_clusters, n // 3))
    x = np.ascontiguousarray(unit, dtype=np.float32)
    if k == 1:
        labels = np.zeros(n, np.int64)
    else:
        kmeans = faiss.Kmeans(x.shape[1], k, niter=20, nredo=1, seed=config.seed, spherical=True)
        kmeans.cp.min_points_per_centroid = 1  # small corpora: no warning, the clusters are still used
        kmeans.train(x)
        labels = kmeans.index.search(x, 1)[1][:, 0].astype(np.int64)
    sizes = np.bincount(labels, minlength=k)
    raw = np.minimum(n / (k * sizes[labels]), config.max_balance_weight)
    return labels, raw / raw.mean()
