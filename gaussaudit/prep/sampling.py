"""Seeded uniform sampling of rows without replacement."""
from __future__ import annotations

import numpy as np


def sample_indices(n_total: int, sample: int, seed: int) -> np.ndarray | None:
    """Sorted row indices of a uniform sample without replacement.

    Returns ``None`` when every row is used: ``sample`` is 0 or not below
    ``n_total``. The indices depend only on ``(n_total, sample, seed)``, so the
    same rows are drawn whatever the file layout or chunking.

    Every reader knows its row count from the file's header (npy, npz, parquet
    metadata) before any data is read, so the sample is drawn up front and
    gathered during the one streaming pass: an exactly uniform sample without
    replacement, where a reservoir would need a random number per row and a
    per-shard proportional draw would depend on how the rows are sharded.
    Memory is O(sample) while ``sample`` is below ``n_total / 50`` (numpy's
    set-based draw), else one index per row.

    Examples
    --------
    >>> sample_indices(10, 3, seed=0)
    array([5, 6, 9])
    >>> sample_indices(10, 0, seed=0) is None
    True
    """
    if sample == 0 or sample >= n_total:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.choice(n_total, size=sample, replace=False, shuffle=False)
    idx.sort()
    return idx
