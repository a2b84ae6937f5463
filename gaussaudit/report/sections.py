"""Everything a scan computed beyond the paper's table, as view-neutral data.

The terminal, markdown and HTML reports each loop over :func:`report_sections`
and draw every section the same way, so no view can leave one out or explain a
result differently. Each explanatory note is chosen by the result it explains:
a "fails" line appears only under a failing row.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gaussaudit.report.table import format_monte_carlo_p, format_number, format_p, format_percent, format_signed, summary_text
from gaussaudit.stats.summaries import TABLE_SUMMARIES

if TYPE_CHECKING:
    from gaussaudit.audit import AuditReport

#: Level of the per-test marks in the projection, joint and uniformity sections.
MARK_LEVEL = 0.05


@dataclass(frozen=True)
class Cell:
    """One table cell: its text; ``ok`` colours a pass (True) or a fail (False);
    ``flag`` marks a value outside its Gaussian null band."""

    text: str
    ok: bool | None = None
    flag: bool = False


@dataclass(frozen=True)
class Section:
    """One block of the report: a title, an optional table, and notes.

    ``key`` names the section in every view (the HTML ``id``, the tests' check
    that each view has each section)."""

    key: str
    title: str
    subtitle: str = ""
    header: tuple[str, ...] = ()
    rows: tuple[tuple[Cell, ...], ...] = ()
    #: The section's conclusion, coloured by ``ok`` (the verdict, the joint tests' meaning).
    summary: Cell | None = None
    notes: tuple[str, ...] = ()


def _mark(ok: bool) -> Cell:
    return Cell("✓" if ok else "✗", ok)


def _p_cell(p: float, replicates: int | None = None) -> Cell:
    text = format_p(p) if replicates is None else format_monte_carlo_p(p, replicates)
    return Cell(text, bool(p > MARK_LEVEL))


def rows_name(report: AuditReport) -> str:
    """The rows the per-feature summaries and the null bands describe."""
    return "normalised" if report.question == "normalised" else "unnormalised"


def sampling_line(report: AuditReport) -> str:
    cfg = report.config
    if report.n_used == report.n_total:
        how = "every row tested"
    elif cfg.sample == 0 or cfg.sample >= report.n_total:
        how = f"tested {report.n_used:,}"
    else:
        how = f"tested {report.n_used:,} (uniform sample, seed {cfg.seed})"
    return f"rows {report.n_total:,} · {how} · dim {report.dim} · {report.dtype}"


def preparation_line(report: AuditReport) -> str:
    """How the rows were prepared before the tests: normalisation, whitening,
    what was left out."""
    cfg = report.config
    parts = ["rows L2-normalised" if cfg.normalize else "rows not normalised (--no-normalize)"]
    if report.feature_space != "coordinates":
        rank = f", {report.effective_rank} directions" if report.effective_rank is not None else ""
        parts.append(f"per-feature tests on {report.feature_space} coordinates (--whiten{rank})")
    if report.layouts != ["array"]:
        parts.append(f"features from {', '.join(report.layouts)}")
    if len(report.constant_features):
        shown = ", ".join(str(j) for j in report.constant_features[:8])
        more = "…" if len(report.constant_features) > 8 else ""
        parts.append(f"{len(report.constant_features)} constant features left out ({shown}{more})")
    if report.nonfinite_rows_dropped:
        parts.append(f"{report.nonfinite_rows_dropped:,} rows with NaN/inf dropped")
    if report.zero_norm_rows:
        parts.append(f"{report.zero_norm_rows:,} all-zero rows")
    return " · ".join(parts)


def provenance_lines(report: AuditReport) -> list[str]:
    """Where the embeddings came from, as ``gaussaudit extract`` recorded it:
    model, weights (tag or checkpoint and its SHA-256), precision."""
    lines = []
    for p in report.provenance:
        parts = [f"{p.get('model', '?')}" + (" (projection head)" if p.get("head") else "")]
        if p.get("pretrained"):
            parts.append(f"pretrained '{p['pretrained']}'")
        elif p.get("checkpoint"):
            parts.append(f"checkpoint {p['checkpoint']}")
        if p.get("checkpoint_sha256"):
            parts.append(f"weights sha256 {str(p['checkpoint_sha256'])[:16]}…")
        parts += [str(p[k]) for k in ("modality", "precision") if p.get(k)]
        if p.get("gaussaudit_version"):
            parts.append(f"extracted by gaussaudit {p['gaussaudit_version']}")
        lines.append("embeddings: " + " · ".join(parts))
    return lines


_QUESTION_LABELS = {"raw": "Gaussian? (raw rows)", "normalised": "normalised Gaussian? (normalised rows)"}


def headline_section(report: AuditReport) -> Section:
    """The level-α headline tests, their nulls, the verdict and the paper's rule."""
    paper = report.verdict
    paper_text = ("paper rule (on unnormalised rows; a heuristic, not a test): "
                  + ("Gaussian" if paper.gaussian else "not Gaussian") + " — " + "; ".join(paper.reasons))
    if not report.tests:
        return Section("headline", "Headline tests", "skipped (--calibrate 0)",
                       notes=("no level-α test: only the " + paper_text,))
    t = report.test
    rows = tuple(
        (Cell(_QUESTION_LABELS[q]), Cell(format_monte_carlo_p(test.p_value, test.replicates), test.gaussian),
         _mark(test.gaussian), Cell("asked" if q == report.question else ""))
        for q, test in report.tests.items())
    if report.calibration.prenormalised:
        nulls = ("rows arrive L2-normalised: the raw rows are not there to test. normalised: H0 = the rows are "
                 "x/‖x‖ of some Gaussian x (fitted to these directions).")
    else:
        nulls = ("raw: H0 = rows i.i.d. Gaussian with the sample's mean and covariance; normalised: H0 = such "
                 "rows L2-normalised (uniform on the sphere if isotropic).")
    what = "no departure from" if t.gaussian else "departs from"
    verdict = (f"verdict: {'Gaussian' if t.gaussian else 'not Gaussian'} — {what} the {t.question} null at the "
               f"{100 * t.alpha:g}% level")
    return Section(
        "headline", "Headline tests",
        f"level {100 * t.alpha:g}%, {t.replicates} Gaussian surrogates, {t.n:,} rows",
        ("Question", "p", "", ""), rows, Cell(verdict, t.gaussian),
        (nulls, "Statistic: truncated product of the DP K² of every coordinate and random projection, each "
                "centred on the null's mean; its null simulated (Monte Carlo).",
         paper_text))


def effect_sizes_section(report: AuditReport) -> Section:
    """Median and worst |skewness| and |excess kurtosis|, beside the Gaussian null's."""
    cal = report.calibration
    bands = None if cal is None else cal.bands[report.question]

    def row(label, observed, worst, band_name):
        if bands is None:
            null, excess = "", ""
        else:
            # observed, null and excess all of the headline test's rows (at most --test-sample)
            b = bands[band_name]
            observed = b.observed
            null, excess = format_number(b.null_mean), format_signed(b.observed - b.null_mean)
        return (Cell(label), Cell(format_number(observed)), Cell(null), Cell(excess),
                Cell(f"{format_signed(worst.value)} (#{worst.feature})"))

    rows = (row("median |skewness|", report.skewness_median_abs, report.skewness_worst, "skewness.median_abs"),
            row("median |excess kurtosis|", report.excess_kurtosis_median_abs, report.excess_kurtosis_worst,
                "excess_kurtosis.median_abs"))
    notes = []
    if report.worst_ad_features:
        notes.append("highest A²: " + ", ".join(f"#{w.feature} {format_number(w.value)}" for w in report.worst_ad_features))
    m = report.moments
    if m is not None and m.count > report.n_used and (~m.constant).any():
        # The tests see the sample; the moments were accumulated over every row.
        ok = ~m.constant
        notes.append(f"every row ({m.count:,}): median |skewness| "
                     f"{format_number(float(np.median(np.abs(m.skewness[ok]))))}, median |excess kurtosis| "
                     f"{format_number(float(np.median(np.abs(m.excess_kurtosis[ok]))))}")
    null = "" if cal is None else f", {cal.n:,} of them; null: Gaussian surrogates"
    return Section("effect_sizes", "Effect sizes", f"{rows_name(report)} rows{null}",
                   ("", "Observed", "Null", "Excess", "Worst (#feature)"), rows, notes=tuple(notes))


_PROJECTION_FAILS = {
    "random": "random fails: projections in general are not Gaussian (no Maxwell-Poincaré).",
    "pca": "principal fails: structure, e.g. clusters, along the main axes of variation.",
}


def projections_section(report: AuditReport) -> Section | None:
    projections = [p for p in (report.projections_random, report.projections_pca) if p is not None]
    if not projections:
        return None
    rows, notes = [], []
    for p in projections:
        label = (f"random ({p.k} directions)" if p.kind == "random"
                 else f"principal (top {p.k}, {100 * p.explained:.0f}% var.)")
        marks = [s.passes(p.metrics[s.key]) for s in TABLE_SUMMARIES]
        passed = all(ok for ok in marks if ok is not None)
        rows.append((Cell(label), *(Cell(summary_text(s, p.metrics[s.key]), ok) for s, ok in zip(TABLE_SUMMARIES, marks)),
                     _mark(passed)))
        if not passed:
            notes.append(_PROJECTION_FAILS[p.kind])
    return Section("projections", "Projections", f"{rows_name(report)} rows; the paper's rule on each",
                   ("", *(s.short for s in TABLE_SUMMARIES), ""), tuple(rows), notes=tuple(notes))


def joint_section(report: AuditReport) -> Section | None:
    mv = report.multivariate
    if mv is None:
        return None
    space = (f"top {mv.dim}/{mv.source_dim} PCs, {100 * mv.explained:.0f}% var."
             if mv.dim < mv.source_dim else f"all {mv.dim} dimensions")
    mar, hz, en, m = mv.mardia, mv.henze_zirkler, mv.energy, mv.mahalanobis
    rows = [
        (Cell("Mardia skewness"), Cell(format_number(mar.skewness_statistic)), _p_cell(mar.skewness_p),
         _mark(mar.skewness_p > MARK_LEVEL)),
        (Cell("Mardia kurtosis (z)"), Cell(f"{mar.kurtosis_statistic:+.2f}"), _p_cell(mar.kurtosis_p),
         _mark(mar.kurtosis_p > MARK_LEVEL)),
        (Cell("Henze-Zirkler"), Cell(format_number(hz.statistic)), _p_cell(hz.p_value),
         _mark(hz.p_value > MARK_LEVEL)),
        (Cell("energy"), Cell(format_number(en.statistic)), _p_cell(en.p_value, en.replicates),
         _mark(en.p_value > MARK_LEVEL)),
    ]
    if m is not None:
        rows.append((Cell("Mahalanobis D² vs Beta (KS)"), Cell(format_number(m.statistic)),
                     _p_cell(m.p_value, m.replicates), _mark(m.p_value > MARK_LEVEL)))
    failed = not all(row[-1].ok for row in rows)
    meaning = ("✗: not jointly Gaussian in these directions, even where each projection looks so."
               if failed else "all pass: no joint departure detectable in these directions at this n.")
    return Section("joint", "Joint Gaussianity of the raw rows", f"{mv.n:,} rows, {space}",
                   ("Test", "Statistic", "p", ""), tuple(rows), Cell(meaning, not failed),
                   (f"each at 5%; energy and Mahalanobis p by Monte Carlo ({en.replicates} replicates).",))


def uniformity_section(report: AuditReport) -> Section | None:
    u = report.uniformity
    if u is None:
        return None
    rows = ((Cell("Rayleigh (mean direction)"), Cell(f"‖ū‖ = {format_number(u.mean_resultant_length)}"),
             _p_cell(u.rayleigh_p), _mark(u.rayleigh_p > MARK_LEVEL)),
            (Cell("Bingham (axes)"), Cell(f"χ²({u.bingham_df:,}) = {format_number(u.bingham_statistic)}"),
             _p_cell(u.bingham_p), _mark(u.bingham_p > MARK_LEVEL)))
    return Section("uniformity", "Uniform on the sphere?", f"normalised rows, {u.n:,}",
                   ("Test", "Statistic", "p", ""), rows,
                   notes=("uniform is what normalised isotropic, mean-zero Gaussian rows give; a mean direction or "
                    "unequal variances fail it even when raw rows are Gaussian.",))


def spectrum_section(report: AuditReport) -> Section | None:
    """How many directions the tested rows' variance spreads over: rotation-invariant
    effective dimensions of their covariance (stats.drift.spectrum_summary)."""
    sp = report.spectrum
    if sp is None or sp.dim == 0:
        return None
    of_d = lambda value: Cell(f"{100 * value / sp.dim:.0f}% of {sp.dim}")  # noqa: E731
    rows = ((Cell("participation ratio (tr Σ)²/tr Σ²"), Cell(format_number(sp.participation_ratio)),
             of_d(sp.participation_ratio)),
            (Cell("entropy rank exp H(λ/Σλ)"), Cell(format_number(sp.entropy_rank)), of_d(sp.entropy_rank)),
            (Cell("RankMe exp H(σ/Σσ)"), Cell(format_number(sp.rankme)), of_d(sp.rankme)),
            (Cell("largest eigenvalue's share"), Cell(f"{100 * sp.top_share:.1f}%"), Cell("")))
    notes = ("each is d when every direction has equal variance and 1 when one direction has it all; "
             "RankMe uses the singular values σ = √λ; Garrido et al. (2023) found it to track the "
             "downstream accuracy of self-supervised encoders. A collapsed representation has a small "
             "one.",)
    expected = report.norm_cv_gaussian
    if expected is not None and np.isfinite(expected) and expected > 0:
        rows += ((Cell("CV of the row norms (raw, observed)"), Cell(format_number(report.norm_cv)), Cell("")),
                 (Cell("CV a Gaussian would have (1st order)"), Cell(f"≈ {format_number(expected)}"), Cell("")))
        notes += (_shell_note(report.norm_cv, expected, report.calibration is not None
                              and report.calibration.norm_cv is not None),)
    return Section("spectrum", "Spread of variance", f"{rows_name(report)} rows, covariance of the {report.n_used:,} "
                   "tested rows", ("Measure", "Value", "Of d"), rows, notes=notes)


#: Observed / Gaussian norm CV beyond which the spectrum section calls the shell thicker
#: (or, below its inverse, thinner): well past the first-order formula's own error, a
#: few percent at PR 2 and less above.
SHELL_RATIO = 1.1


def _shell_note(observed: float, expected: float, banded: bool) -> str:
    """The spectrum section's note on the observed norm CV against a Gaussian's."""
    ratio = observed / expected
    if ratio > SHELL_RATIO:
        verdict = ("a thicker shell than a Gaussian's (as when each row's overall scale varies, e.g. heavy-tailed "
                   "elliptical rows)")
    elif ratio < 1 / SHELL_RATIO:
        verdict = "a thinner shell than a Gaussian's"
    else:
        verdict = "a shell about as thick as a Gaussian's"
    return ("Gaussian's CV: to first order (delta method) for the raw tested rows' mean μ and covariance Σ, "
            "½√(4μᵀΣμ + 2 tr Σ²)/(‖μ‖² + tr Σ) (1/√(2·PR) when centred), off by a share of order 1/PR. Observed "
            f"(every row) {ratio:.2f}× that: {verdict}"
            + ("; the null bands judge it against sampling noise." if banded else "."))


_BAND_LABELS = {
    "statistic": "headline statistic",
    "dp.mean_p": "DP Avg.",
    "dp.pass_fraction": "DP Norm. Feat.",
    "skewness.median_abs": "median |skewness|",
    "excess_kurtosis.median_abs": "median |excess kurtosis|",
}


def null_bands_section(report: AuditReport) -> Section | None:
    cal = report.calibration
    if cal is None:
        return None
    bands = [] if cal.norm_cv is None else [("CV (norms, raw)", cal.norm_cv)]
    bands += [(_BAND_LABELS[name], band) for name, band in cal.bands[report.question].items()]
    def row(label, b):
        fmt = format_percent if label.endswith("Norm. Feat.") else format_number
        return (Cell(label), Cell(fmt(b.observed), flag=not b.inside),
                Cell(f"{fmt(b.null_low)} – {fmt(b.null_high)}"), Cell(f"{b.percentile:.0f}"))

    rows = tuple(row(label, b) for label, b in bands)
    rows_text = f"{rows_name(report)} rows" + (", the CV of raw norms" if cal.norm_cv is not None else "")
    return Section(
        "null_bands", "Null bands",
        f"{cal.replicates} Gaussian surrogates, {cal.n:,} rows, prepared as the data; each band holds "
        f"{100 * cal.coverage:.0f}% of Gaussian samples",
        ("Metric", "Observed", "Null band", "Percentile"), rows,
        notes=(f"{rows_text}. Outside a band (highlighted): beyond what n and normalisation explain; with several "
         "bands one falls outside by chance more often than 10%: the headline test is the verdict.",))


def honesty_notes(report: AuditReport) -> list[str]:
    """What the numbers cannot show for these data: small-d spherical effects,
    tails hidden by normalisation, a norm CV beyond a Gaussian's."""
    out = []
    d, n = report.dim, report.n_used
    beta_kurtosis = 6 / (d + 2)
    if d > 4 and beta_kurtosis > 2 * np.sqrt(24 / n):
        out.append(
            f"d = {d}: normalised coordinates are far from Gaussian at this n (uniform-on-sphere rows have "
            f"excess kurtosis −6/(d+2) = {-beta_kurtosis:.3f} per coordinate, Diaconis–Freedman TV ≤ "
            f"8/(d−4) = {min(8 / (d - 4), 1):.2f}); the paper's rule on normalised rows rejects even perfect data "
            "here, while the normalised headline test is judged against the normalised null.")
    cal = report.calibration
    if cal is not None and not cal.prenormalised:  # unit rows get their note from the audit
        b = cal.norm_cv
        band = f"({format_number(b.null_low)}–{format_number(b.null_high)})"
        if report.norm_cv > b.null_high:
            out.append(f"norm CV {format_number(report.norm_cv)} is above what a Gaussian of this covariance gives "
                       f"{band}: the shell is thicker than Gaussian.")
        elif report.norm_cv < b.null_low:
            out.append(f"norm CV {format_number(report.norm_cv)} is below what a Gaussian of this covariance gives "
                       f"{band}: the shell is thinner than Gaussian (e.g. rows already normalised).")
    if report.config.normalize:
        out.append("L2 normalisation removes each row's norm: heavy tails shared by a whole row (elliptical, "
                   "e.g. multivariate t) vanish from normalised rows; the raw test, the joint tests and the "
                   "norm CV still see them.")
    return out


def tested_rows(report: AuditReport) -> str:
    t = report.test
    return f"{report.n_used:,} rows, headline {t.n:,}" if t is not None else f"{report.n_used:,} rows"


def notes_section(report: AuditReport) -> Section:
    notes = (*honesty_notes(report), *report.notes,
             f"a pass means no departure detectable at this n ({tested_rows(report)}): not proof. A larger n detects "
             "smaller departures: compare at one --sample.")
    return Section("notes", "Notes", notes=notes)


def report_sections(report: AuditReport) -> list[Section]:
    """Every section the scan computed, in report order (absent ones left out).

    Examples
    --------
    >>> import numpy as np
    >>> from gaussaudit import audit
    >>> report = audit(np.random.default_rng(0).standard_normal((500, 8)), calibrate=0)
    >>> [s.key for s in report_sections(report)]
    ['headline', 'effect_sizes', 'projections', 'joint', 'uniformity', 'spectrum', 'notes']
    """
    built = (headline_section(report), effect_sizes_section(report), projections_section(report),
             joint_section(report), uniformity_section(report), spectrum_section(report), null_bands_section(report),
             notes_section(report))
    return [s for s in built if s is not None]
