"""The Gaussian model of a set of embeddings, put to use: per-row
log-likelihood, squared Mahalanobis norm with its χ² p-value, and an
out-of-distribution flag calibrated on held-out reference rows.

The model is N(μ, Σ) with μ and Σ (ddof 1) accumulated over every row in one
pass (:class:`CovarianceState`: chunk states that merge, Chan et al. 1979),
Σ = V Λ Vᵀ kept to its rank r (eigenvalues above ``rtol`` times the largest),
and the whitening W = V Λ^(−½) of Whitened CLIP [1]_:

    log p(x) = −½ (r·log 2π + Σ log λ_k + ‖Wᵀ(x − μ)‖²).

‖Wᵀ(x − μ)‖² is χ²_r for a row of that Gaussian (with μ, Σ known; fitted on n
rows it is close to that when n ≫ r). The OOD flag does not rely on it: its
p-value is conformal [2]_, the rank of the row's Mahalanobis norm among those
of m held-out reference rows, (1 + #{held-out ≥ row})/(m + 1), so a row
exchangeable with the reference rows is flagged at rate at most ``fpr``
whatever their distribution.

References
----------
.. [1] Betser, R., Levi, M. Y. & Gilboa, G. (2025). Whitened CLIP as a
   likelihood surrogate of images and captions. ICML 2025.
.. [2] Vovk, V., Gammerman, A. & Shafer, G. (2005). *Algorithmic Learning in a
   Random World*, Springer (conformal p-values); Angelopoulos, A. N. & Bates, S.
   (2023). Conformal prediction: a gentle introduction. Found. Trends Mach. Learn. 16(4).
.. [3] Chan, T. F., Golub, G. H. & LeVeque, R. J. (1979). Updating formulae and
   a pairwise algorithm for computing sample variances. Stanford CS report 79-773.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from gaussaudit.errors import GaussAuditError

#: Eigenvalues at or below this share of the largest are taken as zero.
DEFAULT_RTOL = 1e-10


@dataclass
class CovarianceState:
    """Count, mean and scatter matrix Σ(x − x̄)(x − x̄)ᵀ of the rows seen: a
    partial state that merges exactly (chunks, shards, threads)."""

    dim: int
    count: int = 0
    mean: np.ndarray = field(default=None)  # type: ignore[assignment]
    scatter: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        if self.mean is None:
            self.mean = np.zeros(self.dim)
        if self.scatter is None:
            self.scatter = np.zeros((self.dim, self.dim))

    def update(self, rows: np.ndarray) -> "CovarianceState":
        rows = np.asarray(rows, dtype=np.float64)
        if len(rows):
            chunk_mean = rows.mean(axis=0)
            centred = rows - chunk_mean
            self.merge(CovarianceState(self.dim, len(rows), chunk_mean, centred.T @ centred))
        return self

    def merge(self, other: "CovarianceState") -> "CovarianceState":
        """Chan et al.'s pairwise update: exact in exact arithmetic, stable in floating point."""
        if other.count == 0:
            return self
        if self.count == 0:
            self.count, self.mean, self.scatter = other.count, other.mean.copy(), other.scatter.copy()
            return self
        n = self.count + other.count
        delta = other.mean - self.mean
        self.scatter = self.scatter + other.scatter + np.outer(delta, delta) * (self.count * other.count / n)
        self.mean = self.mean + delta * (other.count / n)
        self.count = n
        return self

    @property
    def covariance(self) -> np.ndarray:
        return self.scatter / (self.count - 1)


@dataclass(frozen=True, eq=False)
class GaussianModel:
    """N(mean, Σ) with Σ = V diag(eigenvalues) Vᵀ kept to its rank.

    Attributes
    ----------
    mean : ndarray (d,)
    eigenvalues : ndarray (r,)
        The kept eigenvalues of Σ, decreasing.
    eigenvectors : ndarray (d, r)
    n : int
        Rows the model was fitted on.
    calibration : ndarray (m,)
        Sorted squared Mahalanobis norms of held-out reference rows (empty: none held out).
    """

    mean: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    n: int
    calibration: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    @property
    def rank(self) -> int:
        return self.eigenvalues.shape[0]

    @property
    def whitening(self) -> np.ndarray:
        """W = V Λ^(−½), d × r: Wᵀ(x − μ) has identity covariance."""
        return self.eigenvectors / np.sqrt(self.eigenvalues)

    @property
    def log_det(self) -> float:
        """log det Σ over the kept directions (the pseudo-determinant)."""
        return float(np.sum(np.log(self.eigenvalues)))

    def mahalanobis_sq(self, x: np.ndarray) -> np.ndarray:
        """‖Wᵀ(x − μ)‖² of each row of ``x`` (n × d)."""
        z = (np.asarray(x, dtype=np.float64) - self.mean) @ self.whitening
        return np.einsum("ij,ij->i", z, z)

    def log_likelihood(self, x: np.ndarray, mahalanobis_sq: np.ndarray | None = None) -> np.ndarray:
        """log N(x; μ, Σ) of each row (nats), on the kept directions."""
        d2 = self.mahalanobis_sq(x) if mahalanobis_sq is None else mahalanobis_sq
        return -0.5 * (self.rank * np.log(2 * np.pi) + self.log_det + d2)

    def chi2_pvalue(self, mahalanobis_sq: np.ndarray) -> np.ndarray:
        """P(χ²_r ≥ d²): how unusual each row is if the data are this Gaussian."""
        return stats.chi2.sf(mahalanobis_sq, self.rank)

    def conformal_pvalue(self, mahalanobis_sq: np.ndarray) -> np.ndarray:
        """(1 + #{held-out ≥ d²})/(m + 1): valid for rows exchangeable with the held-out ones, Gaussian or not."""
        m = self.calibration.shape[0]
        if m == 0:
            raise GaussAuditError("the model has no held-out reference rows to calibrate against; fit it with a holdout.")
        at_least = m - np.searchsorted(self.calibration, mahalanobis_sq, side="left")
        return (1 + at_least) / (m + 1)

    def with_calibration(self, reference_rows: np.ndarray) -> "GaussianModel":
        """The model with ``reference_rows`` (not used to fit it) as its calibration set."""
        return GaussianModel(self.mean, self.eigenvalues, self.eigenvectors, self.n,
                             np.sort(self.mahalanobis_sq(reference_rows)))


def model_from_state(state: CovarianceState, rtol: float = DEFAULT_RTOL) -> GaussianModel:
    """The Gaussian model of accumulated rows: Σ's eigendecomposition kept to its rank.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal((5000, 3)) * [1.0, 2.0, 0.5]
    >>> model = model_from_state(CovarianceState(3).update(x))
    >>> model.rank, np.round(model.eigenvalues, 1)
    (3, array([3.9, 1. , 0.3]))
    >>> bool(abs(model.mahalanobis_sq(x).mean() - 3 * 4999 / 5000) < 1e-9)   # in-sample: exactly r(n−1)/n
    True
    """
    if state.count < 2:
        raise GaussAuditError(f"a Gaussian model needs at least 2 rows; got {state.count}.")
    values, vectors = np.linalg.eigh(state.covariance)
    values, vectors = values[::-1], vectors[:, ::-1]
    top = float(values[0]) if values.size else 0.0
    if not top > 0:
        raise GaussAuditError("every row is the same: the covariance is zero and there is no Gaussian model to fit.")
    keep = values > rtol * top
    return GaussianModel(state.mean.copy(), values[keep].copy(), vectors[:, keep].copy(), state.count)
