"""Options: ``AuditConfig``, how every entry point takes and checks its options,
and how an error names an option.

An error names an option the way its user typed it (:func:`~gaussaudit.errors.option_name`):
``sample`` when the library raised (``audit(x, sample=5)``), ``--sample`` when the
CLI did (``gaussaudit scan -n 5``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from gaussaudit.errors import GaussAuditError, cli_spelling, option_name, option_set  # noqa: F401  (API)

RULES = ("paper",)


def configured(config, default_type, options: dict, what: str):
    """``config`` (or a default ``default_type()``) with keyword ``options``
    applied and validated: the one way every entry point takes its options.

    An unknown option name is a GaussAuditError naming the ``what`` ("audit",
    "extract"…); ``validated()`` checks the values.
    """
    config = config if config is not None else default_type()
    if options:
        try:
            config = replace(config, **options)
        except TypeError as exc:
            raise GaussAuditError(f"unknown {what} option: {exc}") from None
    return config.validated()


def check_int_option(field: str, value, minimum: int | None = None, allowed_zero: bool = False) -> int:
    """Validate a whole-number option; ``allowed_zero`` admits 0 below ``minimum``."""
    name = option_name(field)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise GaussAuditError(f"{name} must be a whole number; got {value!r}.")
    value = int(value)
    if minimum is not None and value < minimum and not (allowed_zero and value == 0):
        zero = "0 or " if allowed_zero else ""
        raise GaussAuditError(f"{name} must be {zero}at least {minimum}; got {value}.")
    return value


def check_choice(field: str, value, choices) -> None:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise GaussAuditError(f"{option_name(field)} must be one of {', '.join(choices)}; got {value!r}.")


@dataclass(frozen=True)
class AuditConfig:
    """Options of an audit; the CLI's flags map one to one onto these fields.

    Parameters
    ----------
    normalize : bool, default True
        L2-normalise rows before the tests (the paper's u_i). Norms and their CV
        are always computed on the raw rows.
    sample : int, default 10000
        Rows drawn uniformly without replacement for the tests; 0 uses every
        row. A fixed n keeps verdicts comparable: at huge n every test rejects
        tiny deviations.
    seed : int, default 0
        Seed of the sample; same input and options give the same numbers.
    key : str, optional
        Array to read from ``.npz`` files.
    column : str, optional
        List column to read from parquet files (default: auto-detected).
    columns : sequence of str or comma-separated str, optional
        Wide parquet files: exactly these columns are the features (integer
        columns included). Default: every floating-point column.
    exclude : sequence of str or comma-separated str, optional
        Wide parquet files: columns left out of the default features.
    only : {"image", "text"}, optional
        A clip-retrieval output folder: the embedding set to audit (img_emb/
        or text_emb/); without it a folder with both is two datasets, which
        scan and compare show side by side (``audit`` asks for one).
    split : str, optional
        A Hugging Face parquet export: the split to audit (default: every
        split, as one dataset; the report names them).
    drop_nonfinite : bool, default False
        Leave out rows with NaN/inf/missing values instead of failing.
    rule : {"paper"}
        Verdict rule: Gaussian iff mean A² < 0.752 and mean DP p > 0.05.
    threads : int, optional
        Threads for the tests, BLAS's included while the audit runs (default:
        every core).
    projections : int, default 128
        Random directions, uniform on the sphere (seeded), whose projections get
        the same AD/DP tests; 0 skips them.
    pca_projections : int, default 16
        Top principal directions tested the same way; 0 skips them.
    whiten : {None, "pca", "zca"}
        Run the per-feature tests on whitened coordinates.
    mahalanobis : bool, default True
        Test squared Mahalanobis norms of the raw rows against their exact law
        under normality (on the multivariate subsample, Monte Carlo p-value).
    mv_sample : int, default 2000
        Rows (seeded subsample) for the joint tests of the raw rows (Mardia,
        Henze-Zirkler, energy, Mahalanobis); 0 skips them.
    mv_dims : int, default 16
        The multivariate tests run on at most this many top principal
        components (and at most one per 5 subsample rows).
    energy_replicates : int, default 19
        Replicates for the energy and Mahalanobis Monte Carlo p-values;
        (R + 1)·alpha must be a whole number for an exact level.
    calibrate : int, default 19
        Gaussian surrogates (the raw sample's mean and covariance, the test's
        n, prepared as the data were) for the headline tests and the null
        bands; R + 1 must be a multiple of 20 (19, 39, 59, 99, …); 0 skips the
        headline tests.
    test_sample : int, default 5000
        Rows (seeded subsample of the tested rows) the headline tests and null
        bands use; 0 = every tested row. The surrogates cost about R times the
        per-feature moments of this many rows.
    alpha : float, default 0.05
        Level of the headline tests.
    device : {"cpu", "cuda", "cuda:N", "auto"}
        Where the per-feature and projection tests run: ``cuda`` uses torch on
        a GPU (the extract extra), equal to the CPU results to ~1e-10; ``auto``
        takes a GPU when torch sees one.

    Examples
    --------
    >>> AuditConfig(sample=5).validated()
    Traceback (most recent call last):
    ...
    gaussaudit.errors.GaussAuditError: sample must be 0 or at least 20; got 5.
    """

    normalize: bool = True
    sample: int = 10_000
    seed: int = 0
    key: str | None = None
    column: str | None = None
    columns: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    only: str | None = None
    split: str | None = None
    drop_nonfinite: bool = False
    rule: str = "paper"
    threads: int | None = None
    projections: int = 128
    pca_projections: int = 16
    whiten: str | None = None
    mahalanobis: bool = True
    mv_sample: int = 2000
    mv_dims: int = 16
    energy_replicates: int = 19
    calibrate: int = 19
    test_sample: int = 5000
    alpha: float = 0.05
    device: str = "cpu"

    def validated(self) -> "AuditConfig":
        """These options checked (a GaussAuditError naming the first bad one) and
        normalised: column lists as tuples, the device resolved."""
        from gaussaudit.prep.whiten import WHITEN_METHODS
        from gaussaudit.stats.headline import check_replicates, exact_level

        check_int_option("sample", self.sample, minimum=20, allowed_zero=True)
        check_int_option("seed", self.seed, minimum=0)
        if self.threads is not None:
            check_int_option("threads", self.threads, minimum=1)
        check_choice("rule", self.rule, RULES)
        check_int_option("projections", self.projections, minimum=0)
        check_int_option("pca_projections", self.pca_projections, minimum=0)
        if self.whiten is not None:
            check_choice("whiten", self.whiten, WHITEN_METHODS)
        check_int_option("mv_sample", self.mv_sample, minimum=20, allowed_zero=True)
        check_int_option("mv_dims", self.mv_dims, minimum=1)
        check_int_option("energy_replicates", self.energy_replicates, minimum=1)
        check_int_option("calibrate", self.calibrate, minimum=19, allowed_zero=True)
        check_int_option("test_sample", self.test_sample, minimum=20, allowed_zero=True)
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not 0 < self.alpha < 0.5:
            raise GaussAuditError(f"{option_name('alpha')} must be a number between 0 and 0.5; got {self.alpha!r}.")
        if self.calibrate:
            why = check_replicates(self.calibrate, self.alpha)
            if why:
                raise GaussAuditError(f"{option_name('calibrate')}: {why}.")
        if self.mv_sample and not exact_level(self.energy_replicates, self.alpha):
            raise GaussAuditError(
                f"{option_name('energy_replicates')}: (R + 1) × alpha must be a whole number for an exact "
                f"{100 * self.alpha:g}% level (R = 19, 39, 99, … at alpha 0.05); got R = {self.energy_replicates}.")
        from gaussaudit.io.layouts import check_layout_options

        check_layout_options(self.only, self.split)
        columns, exclude = _column_names("columns", self.columns), _column_names("exclude", self.exclude)
        if columns is not None and exclude:
            raise GaussAuditError(f"{option_name('columns')} lists the feature columns and {option_name('exclude')} "
                                  "removes some from the default (every float column): give one or the other.")
        config = replace(self, columns=columns, exclude=exclude or ())
        if self.device != "cpu":
            from gaussaudit.stats.gpu import resolve_device

            return replace(config, device=resolve_device(self.device))
        return config


def _column_names(field: str, value) -> tuple[str, ...] | None:
    """Column names from a comma-separated string (the CLI) or a sequence."""
    if value is None or (field == "exclude" and not isinstance(value, str) and len(value) == 0):
        return None
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else [str(n) for n in value]
    if not names or any(not n for n in names):
        raise GaussAuditError(f"{option_name(field)} takes column names separated by commas; got {value!r}.")
    return tuple(names)
