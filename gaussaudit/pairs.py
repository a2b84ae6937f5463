"""``audit_pairs``: the paper's theory measured on paired embeddings (row i of
A pairs with row i of B: two augmented views of one input, or a CLIP image and
its caption): alignment, the augmentation-mildness bound η², uniformity beside
what uniform-on-the-sphere rows give, and the modality gap
(:mod:`gaussaudit.stats.pairs`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaussaudit.config import AuditConfig, configured
from gaussaudit.errors import GaussAuditError, option_name
from gaussaudit.io.sources import source_label

PAIRS_SCHEMA = "gaussaudit.pairs/1"


@dataclass(frozen=True)
class PairsReport:
    result: object  # gaussaudit.stats.pairs.PairsResult
    a_label: str
    b_label: str
    n_total: int
    temperature: float

    def to_dict(self) -> dict:
        from gaussaudit.stats.pairs import COSINE_BINS, cosine_histogram

        r = self.result

        def num(x):
            x = float(x)
            return x if np.isfinite(x) else None

        return {
            "schema": PAIRS_SCHEMA,
            "a": self.a_label,
            "b": self.b_label,
            "n_total": self.n_total,
            "n": r.n,
            "dim": r.dim,
            "pairs": {
                "alignment": num(r.alignment),
                "alignment_std": num(r.alignment_std),
                "mean_norm_sq": {"a": num(r.mean_norm_sq_a), "b": num(r.mean_norm_sq_b),
                                 "a_debiased": num(r.mean_norm_sq_a_debiased),
                                 "b_debiased": num(r.mean_norm_sq_b_debiased)},
                "eta2_lower": num(r.eta2_lower),
                "uniformity": num(r.uniformity),
                "uniformity_alpha": num(r.uniformity_alpha),
                "uniformity_temperature": self.temperature,
                "uniformity_reference": num(r.uniformity_reference),
                "uniformity_gaussian": num(r.uniformity_gaussian),
                "uniformity_t": num(r.uniformity_t),
                "uniformity_rows": r.samples,
                "modality_gap": num(r.modality_gap),
                "negative_cosine_mean": num(np.mean(r.negative_cosines)),
                "cosine_histogram": {"range": [-1.0, 1.0], "bins": COSINE_BINS,
                                     "positive": cosine_histogram(r.positive_cosines).tolist(),
                                     "negative": cosine_histogram(r.negative_cosines).tolist()},
            },
        }


def check_pair_options(*, temperature, t, sample, uniformity_sample, seed, **options) -> AuditConfig:
    """:func:`audit_pairs`' options checked before anything is read (a GaussAuditError
    naming the first bad one); the reading config they give."""
    from gaussaudit.config import check_int_option
    from gaussaudit.stats.pairs import _finite, _whole

    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise GaussAuditError(f"{option_name('temperature')} must be a positive number; got {temperature!r}.")
    _finite(t, "t")
    _whole(uniformity_sample, "uniformity_sample", 2)
    check_int_option("sample", sample, 20, allowed_zero=True)
    if options.get("drop_nonfinite"):
        raise GaussAuditError("paired embeddings cannot drop rows: dropping row i of one side would pair the rest "
                              "wrongly; clean both files first.")
    return configured(None, AuditConfig, {"seed": seed, "normalize": False, **options}, "pairs")


def audit_pairs(a, b, *, temperature: float = 0.1, t: float = 2.0, sample: int = 10000, uniformity_sample: int = 5000,
                seed: int = 0, **options) -> PairsReport:
    """Paired-embedding measurements of the paper's theory.

    Parameters
    ----------
    a, b : path, list of paths or 2-D array
        Paired embeddings with the same row count: row i of ``a`` pairs with row i of ``b``.
    temperature : float, default 0.1
        τ of the uniformity Φ = E log E exp(u·v/τ).
    t : float, default 2
        Of Wang & Isola's Gaussian-potential uniformity log E exp(−t‖u − u′‖²).
    sample : int, default 10000
        Pairs used (a seeded uniform draw of pair indices, the same rows on both sides); 0 = every pair.
    uniformity_sample : int, default 5000
        Pairs of the O(s²) uniformity sums.
    options
        How the files are read: ``key``, ``column``…

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((3000, 64))
    >>> view = 0.8 * x + 0.6 * rng.standard_normal((3000, 64))
    >>> report = audit_pairs(x, view)
    >>> round(report.result.alignment, 2), round(report.result.eta2_lower, 2)
    (0.8, 0.8)
    """
    from gaussaudit.stats.pairs import pair_statistics
    from gaussaudit.streaming import sample_rows

    config = check_pair_options(temperature=temperature, t=t, sample=sample, uniformity_sample=uniformity_sample,
                                seed=seed, **options)
    from gaussaudit.io.sources import dataset_options, open_dataset

    read = {name: getattr(config, name, None) for name in dataset_options()}
    n_a, n_b = open_dataset(a, **read).n_rows, open_dataset(b, **read).n_rows
    if n_a != n_b:
        raise GaussAuditError(f"{source_label(a, 'A')} has {n_a:,} rows and {source_label(b, 'B')} {n_b:,}: paired "
                              "embeddings pair row i with row i, so both need the same rows in the same order.")
    rows_a, rows_b = sample_rows(a, config, sample), sample_rows(b, config, sample)  # same seed, same pair indices
    result = pair_statistics(rows_a, rows_b, alpha=1 / temperature, t=t, sample=uniformity_sample, seed=seed,
                             threads=config.threads)
    return PairsReport(result, source_label(a, "A"), source_label(b, "B"), n_a, float(temperature))
