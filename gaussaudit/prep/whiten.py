"""Centring, covariance eigenbasis and whitening, on feature-major data
(one feature per row, samples along axis 1); float32 or float64 in, float64
arithmetic."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WHITEN_METHODS = ("pca", "zca")
_COLUMNS_PER_BLOCK = 4096


@dataclass(frozen=True)
class CovarianceBasis:
    """Mean, covariance eigenbasis and effective rank of a sample.

    Attributes
    ----------
    mean : ndarray, shape (d,)
    eigenvalues : ndarray, shape (d,), or (rank,) when n < d
        Of the covariance (ddof 1), in decreasing order; negative round-off
        clipped to 0.
    eigenvectors : ndarray, shape (d, d), or (d, rank) when n < d
        Column j is the j-th principal direction. With fewer samples than
        features only the directions of nonzero variance are kept (the rest of
        the spectrum is zero): a d × d basis would cost O(d³) time and d² memory
        for nothing the audit uses.
    rank : int
        Eigenvalues above ``rtol`` times the largest: the effective rank.
    n : int
        Samples the basis was estimated from.
    """

    mean: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    rank: int
    n: int

    @property
    def explained(self) -> np.ndarray:
        """Cumulative share of variance held by the first k components."""
        total = self.eigenvalues.sum()
        return np.cumsum(self.eigenvalues) / total if total > 0 else np.zeros_like(self.eigenvalues)


def covariance_basis(x_fm: np.ndarray, rtol: float | None = None, *, scale: np.ndarray | None = None) -> CovarianceBasis:
    """Eigendecomposition of the sample covariance of feature-major data.

    ``rtol`` (default ``max(n, d) * eps``, the scale of eigenvalue round-off)
    decides which eigenvalues count toward the effective rank. ``scale``
    (length n) multiplies each sample first, a block at a time: the covariance
    of the raw rows from normalised ones and their norms, without a copy.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal((3, 500))
    >>> x[2] = x[0] + x[1]             # a dependent feature: rank 2
    >>> covariance_basis(x).rank
    2
    """
    d, n = x_fm.shape
    if scale is None:
        mean = x_fm.mean(axis=1, dtype=np.float64)
    else:
        scale = np.asarray(scale, dtype=np.float64)
        mean = sum(x_fm[:, s : s + _COLUMNS_PER_BLOCK] @ scale[s : s + _COLUMNS_PER_BLOCK]
                   for s in range(0, n, _COLUMNS_PER_BLOCK)) / n
    if n < d:
        return _row_space_basis(x_fm, mean, scale, rtol)
    cov = np.zeros((d, d))
    # Column blocks: float64 products whatever the input dtype, without a
    # centred copy of the whole sample (and 3x faster than one big product).
    for start in range(0, n, _COLUMNS_PER_BLOCK):
        block = x_fm[:, start : start + _COLUMNS_PER_BLOCK]
        if scale is not None:
            block = block * scale[start : start + _COLUMNS_PER_BLOCK]
        block = block - mean[:, None]
        cov += block @ block.T
    cov /= max(n - 1, 1)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values = np.clip(values[order], 0.0, None)
    vectors = vectors[:, order]
    rtol = max(n, d) * np.finfo(np.float64).eps if rtol is None else rtol
    rank = int(np.count_nonzero(values > rtol * values[0])) if values[0] > 0 else 0
    return CovarianceBasis(mean=mean, eigenvalues=values, eigenvectors=vectors, rank=rank, n=n)


def _row_space_basis(x_fm: np.ndarray, mean: np.ndarray, scale: np.ndarray | None,
                     rtol: float | None) -> CovarianceBasis:
    """The covariance eigenbasis from the n × n Gram matrix of the centred
    samples (n < d): the same nonzero spectrum, its eigenvectors mapped back
    to feature space, in O(n²d) instead of O(d³)."""
    d, n = x_fm.shape
    centred = np.asarray(x_fm, dtype=np.float64)
    if scale is not None:
        centred = centred * scale
    centred = centred - mean[:, None]
    gram = centred.T @ centred / max(n - 1, 1)
    values, small = np.linalg.eigh(gram)
    order = np.argsort(values)[::-1]
    values, small = np.clip(values[order], 0.0, None), small[:, order]
    rtol = max(n, d) * np.finfo(np.float64).eps if rtol is None else rtol
    rank = int(np.count_nonzero(values > rtol * values[0])) if values[0] > 0 else 0
    values = values[:rank]
    # u = X v / ‖X v‖: unit eigenvectors of X Xᵀ/(n − 1) with eigenvalue λ
    vectors = centred @ small[:, :rank]
    vectors /= np.sqrt(values * max(n - 1, 1))
    return CovarianceBasis(mean=mean, eigenvalues=values, eigenvectors=vectors, rank=rank, n=n)


def whiten(x_fm: np.ndarray, method: str = "pca", basis: CovarianceBasis | None = None) -> np.ndarray:
    """Whitened coordinates: centred, rotated to the eigenbasis, scaled by 1/√λ.

    ``pca`` gives the ``rank`` standardised principal-component scores (rank × n);
    ``zca`` rotates them back to the original axes (d × n), the whitening closest
    to the data (Bell & Sejnowski 1997). Directions with eigenvalues under the
    rank tolerance are dropped, so the result has identity covariance on the
    kept subspace.
    """
    if method not in WHITEN_METHODS:
        raise ValueError(f"whiten method must be one of {WHITEN_METHODS}; got {method!r}")
    basis = basis or covariance_basis(x_fm)
    r = basis.rank
    kept = basis.eigenvectors[:, :r]
    scores = np.empty((r, x_fm.shape[1]))
    for start in range(0, x_fm.shape[1], _COLUMNS_PER_BLOCK):
        stop = start + _COLUMNS_PER_BLOCK
        scores[:, start:stop] = kept.T @ (x_fm[:, start:stop] - basis.mean[:, None])
    scores /= np.sqrt(basis.eigenvalues[:r])[:, None]
    return scores if method == "pca" else kept @ scores
