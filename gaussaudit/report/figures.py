"""Figures of an audit: QQ plots, the histogram of norms, the histogram of
p-values, A² against its null, and metrics along training. ``draw_*`` return a
matplotlib Figure (tests inspect its axes); ``png`` turns one into PNG bytes.

matplotlib is the optional ``plot`` extra: it is imported inside the functions
that draw, never at module import, so everything else works without it. Figures
are built with ``matplotlib.figure.Figure`` on the Agg canvas, never pyplot, so
no GUI backend or global figure state is involved.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gaussaudit.errors import GaussAuditError
from gaussaudit.report.table import norm_display_range
from gaussaudit.stats import AD_CRITICAL_5PCT, NULL_MAX_N, ad_null_statistics
from gaussaudit.stats.summaries import DP_ALPHA

if TYPE_CHECKING:
    from gaussaudit.audit import AuditReport
    from gaussaudit.compare import PairsTrack, Track
    from gaussaudit.likelihood import ScoreSummary
    from gaussaudit.pairs import PairsReport
    from gaussaudit.reproduce.digits import DigitsResult
    from gaussaudit.reproduce.synthetic import SweepResult, SyntheticResult

PLOT_EXTRA = "pip install 'gaussaudit[plot]'"
#: Simulated samples in the A² null distribution (seeded: same figure every run).
NULL_REPLICATES = 2000
NULL_SEED = 0

DATA = "#2b6cb0"
REFERENCE = "#555555"
THRESHOLD = "#c53030"
PASS, FAIL = "#2f855a", "#c53030"
SECOND = "#b7791f"


def require_matplotlib(option: str) -> None:
    """Raise a GaussAuditError naming the extra to install when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise GaussAuditError(
            f"{option} draws figures with matplotlib, which is not installed; install the plot extra: {PLOT_EXTRA}"
        ) from None


def _new_figure(width: float, height: float):
    require_matplotlib("figures")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)  # the Agg raster canvas, explicitly: no GUI backend is ever chosen
    return fig


def png(fig) -> bytes:
    """The figure as PNG bytes (white background, no software stamp)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor="white", metadata={"Software": None})
    return buf.getvalue()


def _style(ax) -> None:
    ax.grid(True, color="#e2e2e2", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _legend_below(fig, ax, ncols: int = 2) -> None:
    """Legend under the axes: inside, it would cover bars or threshold lines
    wherever the data happen to fall."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=8, frameon=False)


#: File-name stems of one report's figures, in the order the HTML shows them.
FIGURE_NAMES = ("qq", "qq_random", "qq_pca", "norms", "pvalues", "ad_null", "spectrum")
#: The figure of ``gaussaudit pairs`` and of ``gaussaudit score`` (``--html``, ``--plots``).
PAIRS_FIGURE_NAMES = ("cosines",)
SCORE_FIGURE_NAMES = ("mahalanobis",)


def figure_file_name(name: str, prefix: str | None = None) -> str:
    """``qq.png``, or ``PREFIX-qq.png`` when several inputs share a folder."""
    return f"{prefix}-{name}.png" if prefix else f"{name}.png"


def figure_file_names(prefix: str | None = None) -> list[str]:
    return [figure_file_name(name, prefix) for name in FIGURE_NAMES]


@dataclass(frozen=True)
class FigureImage:
    """One figure: a file-name stem, a title and caption for the HTML, the PNG."""

    name: str
    title: str
    caption: str
    png: bytes


# ----------------------------------------------------------------------------
# one report


def draw_qq(report: AuditReport, features=None, unit: str = "feature"):
    """QQ plots of the best, median and worst feature by A², standardised, with
    the y = x line and a pointwise 95 % band for a Gaussian sample of the same n.
    ``features`` (default the report's) may be projections' order statistics."""
    from scipy import special, stats

    features = report.qq_features if features is None else features
    fig = _new_figure(3.4 * max(len(features), 1), 3.6)
    axes = fig.subplots(1, max(len(features), 1), squeeze=False)[0]
    n = report.n_used
    for ax, f in zip(axes, features):
        theoretical = special.ndtri(f.probabilities)
        standardised = (f.values - f.mean) / (f.std if f.std > 0 else 1.0)
        # The i-th of n uniform order statistics is Beta(i, n + 1 - i): its 2.5 %
        # and 97.5 % quantiles, mapped through Φ⁻¹, bound a Gaussian sample's QQ line.
        rank = np.round(f.probabilities * n + 0.5)
        low = special.ndtri(stats.beta.ppf(0.025, rank, n + 1 - rank))
        high = special.ndtri(stats.beta.ppf(0.975, rank, n + 1 - rank))
        ax.fill_between(theoretical, low, high, color="#d9e2ec", linewidth=0, label="95% band (Gaussian)")
        lim = max(np.abs(theoretical).max(), 1.0) * 1.05
        ax.plot([-lim, lim], [-lim, lim], color=REFERENCE, linestyle="--", linewidth=1, label="y = x")
        ok = f.statistic * (1 + 0.75 / n + 2.25 / n**2) < AD_CRITICAL_5PCT
        ax.plot(theoretical, standardised, ".", markersize=3, color=PASS if ok else FAIL, label=unit)
        ax.set_title(f"{f.role}: {unit} {f.feature}\nA² = {f.statistic:.3g} ({'passes' if ok else 'fails'} 5%)",
                     fontsize=10)
        ax.set_xlabel("N(0, 1) quantile")
        ax.set_xlim(-lim, lim)
        _style(ax)
    axes[0].set_ylabel(f"standardised {unit} value")
    axes[0].legend(loc="upper left", fontsize=8, frameon=False)
    return fig


def draw_norms(report: AuditReport, bins: int = 80):
    """Histogram of raw row norms over every row, relative to their mean, on an
    axis from 0: a thin shell is a narrow peak at 1, far from 0, whatever the
    scale of the embeddings, so models compare by eye."""
    hist = report.norm_histogram
    mean = report.norm_mean
    scale = mean if mean > 0 else 1.0  # all-zero rows only: plot raw norms
    fig = _new_figure(5.6, 3.9)
    ax = fig.subplots()
    lo, hi = norm_display_range(hist)
    right = max(2.0, hi / scale)
    counts, edges = hist.rebinned(0.0, right * scale, bins)
    ax.stairs(counts, edges / scale, fill=True, color=DATA, alpha=0.9, label=f"{hist.count:,} rows")
    ax.axvspan((mean - report.norm_std) / scale, (mean + report.norm_std) / scale, color=SECOND, alpha=0.25,
               zorder=0, label=f"mean ± std: CV = {report.norm_cv:.3g}")
    ax.axvline(1.0 if mean > 0 else 0.0, color=REFERENCE, linestyle="--", linewidth=1.2, label="mean")
    ax.set_xlim(0, right)
    outside = hist.count - int(counts.sum())
    if outside:
        ax.annotate(f"{outside:,} row{'s' if outside > 1 else ''} beyond the axis →", xy=(0.99, 0.97),
                    xycoords="axes fraction", ha="right", va="top", fontsize=8, color=REFERENCE)
    ax.set_title(f"Row norms of all {hist.count:,} rows (raw; mean ‖x‖ = {mean:.4g})", fontsize=10)
    ax.set_xlabel("‖x‖ / mean ‖x‖" if mean > 0 else "‖x‖")
    ax.set_ylabel("rows per bin")
    _legend_below(fig, ax, ncols=3)
    _style(ax)
    return fig


def draw_pvalues(report: AuditReport, bins: int = 20):
    """Histogram (density) of per-feature D'Agostino-Pearson p-values against
    the uniform density a Gaussian gives, with the 0.05 level."""
    p = report.features.dp.pvalue
    p = p[np.isfinite(p)]
    fig = _new_figure(5.6, 3.9)
    ax = fig.subplots()
    density, edges = np.histogram(p, bins=bins, range=(0.0, 1.0), density=True)
    ax.stairs(density, edges, fill=True, color=DATA, alpha=0.85, label=f"{p.size:,} features")
    ax.axhline(1.0, color=REFERENCE, linestyle="--", linewidth=1.5, label="uniform: what a Gaussian gives")
    ax.axvline(DP_ALPHA, color=THRESHOLD, linewidth=1.2, label=f"p = {DP_ALPHA}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max(2.0, density.max() * 1.1))
    ax.set_title(f"D'Agostino–Pearson p-values per feature: mean {report.dp_mean_p:.3g}, "
                 f"{100 * report.dp_pass_fraction:.1f}% > {DP_ALPHA}", fontsize=10)
    ax.set_xlabel("p-value")
    ax.set_ylabel("density")
    _legend_below(fig, ax)
    _style(ax)
    return fig


def ad_null(n: int) -> np.ndarray:
    """The simulated null A² used in figures (seeded)."""
    return ad_null_statistics(n, replicates=NULL_REPLICATES, seed=NULL_SEED)


def draw_ad_null(report: AuditReport, null: np.ndarray | None = None):
    """Per-feature A² against its null distribution (simulated Gaussian samples),
    with the 5 % critical value and the mean A² the rule judges."""
    a2 = report.features.ad.statistic
    a2 = a2[np.isfinite(a2)]
    null = ad_null(report.n_used) if null is None else null
    n_sim = min(report.n_used, NULL_MAX_N)
    fig = _new_figure(5.6, 3.9)
    ax = fig.subplots()
    top = max(a2.max(), np.quantile(null, 0.999))
    # A² of clearly non-Gaussian features runs into the hundreds: a log axis then
    # keeps the null's bulk (below 1) and the data both readable.
    log_axis = top > 8
    if log_axis:
        low = max(min(a2.min(), np.quantile(null, 0.001)), 1e-3)
        edges = np.geomspace(low * 0.9, top * 1.1, 50)
        ax.set_xscale("log")
    else:
        edges = np.linspace(0, top * 1.05, 40)
    ax.hist(a2, bins=edges, weights=np.full(a2.size, 1 / a2.size), histtype="stepfilled", alpha=0.85, color=DATA,
            label=f"data: A² of {a2.size:,} features")
    # The null drawn as an outline on top, so where the data overlap it shows.
    ax.hist(null, bins=edges, weights=np.full(null.size, 1 / null.size), histtype="step", color="black",
            linewidth=1.4, label=f"null: A² of {null.size:,} simulated Gaussian samples, n = {n_sim:,}")
    ax.axvline(AD_CRITICAL_5PCT, color=THRESHOLD, linewidth=1.2, label=f"5% critical value {AD_CRITICAL_5PCT}")
    ax.axvline(report.ad_mean, color="black", linestyle="--", linewidth=1.2, label=f"mean A² = {report.ad_mean:.3g}")
    ax.set_title("Anderson–Darling A² per feature vs its null distribution", fontsize=10)
    ax.set_xlabel("A² (mean and std estimated)" + (", log scale" if log_axis else ""))
    ax.set_ylabel("share per bin")
    _legend_below(fig, ax)
    _style(ax)
    return fig


def spectrum_shares(report: AuditReport) -> np.ndarray | None:
    """The tested rows' covariance eigenvalues as shares of their sum, decreasing (what
    :func:`draw_spectrum` draws); None when the scan did not need the covariance or it is zero."""
    values = report.spectrum_eigenvalues
    if values is None or len(values) == 0:
        return None
    values = np.asarray(values, dtype=np.float64)
    total = float(values.sum())
    return values / total if total > 0 else None


def draw_spectrum(report: AuditReport):
    """The eigen-spectrum of the tested rows' covariance: each eigenvalue's share of the
    variance against its rank, on a log axis, with the participation ratio and RankMe
    (effective dimensions, :func:`~gaussaudit.stats.drift.spectrum_summary`) as vertical
    lines and the share every direction would have with equal variance. Eigenvalues at
    round-off (past the effective rank) are left out: a log axis cannot show 0."""
    shares = spectrum_shares(report)
    if shares is None:
        raise GaussAuditError("this report has no covariance spectrum to draw (nothing in the scan needed the "
                              "covariance, or its variance is zero).")
    sp = report.spectrum
    kept = report.effective_rank if report.effective_rank is not None else int(np.count_nonzero(shares > 0))
    kept = max(min(kept, int(np.count_nonzero(shares > 0))), 1)
    rank = np.arange(1, kept + 1)
    fig = _new_figure(5.6, 3.9)
    ax = fig.subplots()
    ax.plot(rank, shares[:kept], marker="." if kept <= 200 else None, markersize=4, linewidth=1.4, color=DATA,
            label=f"λ_k / Σλ, {kept:,} eigenvalues", gid="eigenvalues")
    dim = max(report.dim, shares.size)  # fewer rows than dimensions: only the nonzero eigenvalues were kept
    ax.axhline(1.0 / dim, color=REFERENCE, linestyle=":", linewidth=1.2, label=f"equal variance: 1/{dim:,}")
    ax.axvline(sp.participation_ratio, color=THRESHOLD, linestyle="--", linewidth=1.2,
               label=f"participation ratio {sp.participation_ratio:.3g}")
    ax.axvline(sp.rankme, color=SECOND, linestyle="-.", linewidth=1.2, label=f"RankMe {sp.rankme:.3g}")
    ax.set_yscale("log")
    drawn = shares[:kept]
    _plain_log_ticks(ax.yaxis, minor=bool(np.log10(drawn[0] / drawn[-1]) < 2))
    if kept > 50:
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis)
    ax.set_xlim(0.8 if kept > 50 else 0.5, kept * (1.25 if kept > 50 else 1.0) + (0 if kept > 50 else 0.5))
    dropped = dim - kept
    if dropped:
        ax.annotate(f"rank {kept:,} of {dim:,}: {dropped:,} eigenvalue{'s' if dropped > 1 else ''} ≈ 0 not drawn",
                    xy=(0.99, 0.97),
                    xycoords="axes fraction", ha="right", va="top", fontsize=8, color=REFERENCE)
    from gaussaudit.report.sections import rows_name

    ax.set_title(f"Covariance spectrum of the {report.n_used:,} tested rows ({rows_name(report)})\n"
                 f"largest eigenvalue: {100 * sp.top_share:.1f}% of the variance", fontsize=10)
    ax.set_xlabel("eigenvalue rank k" + (", log scale" if kept > 50 else ""))
    ax.set_ylabel("share of variance λ_k / Σλ")
    _legend_below(fig, ax, ncols=2)
    _style(ax)
    return fig


def report_figures(report: AuditReport, null_cache: dict | None = None) -> list[FigureImage]:
    """Every figure of one report, in the order the HTML shows them.

    ``null_cache`` maps a sample size to its simulated null, so a comparison of
    inputs tested at the same n simulates once.
    """
    null_cache = {} if null_cache is None else null_cache
    n_sim = min(report.n_used, NULL_MAX_N)
    if n_sim not in null_cache:
        null_cache[n_sim] = ad_null(n_sim)
    a2_null = null_cache[n_sim]
    return [
        FigureImage("qq", "QQ plots: best, median and worst feature",
                    "Standardised order statistics against N(0, 1) quantiles. On the dashed line and inside the "
                    "shaded band is what a Gaussian sample of this size looks like; S-shapes are heavy or light "
                    "tails, bends are skew.", png(draw_qq(report))),
        *[FigureImage(f"qq_{p.kind}", f"QQ plots: best, median and worst {label}",
                      f"As above, for the projections onto {label}s ({p.k} tested).",
                      png(draw_qq(report, p.qq, unit=f"{label.split()[0]} projection")))
          for p, label in ((report.projections_random, "random direction"),
                           (report.projections_pca, "principal direction")) if p is not None and p.qq],
        FigureImage("norms", "Row norms: the thin shell",
                    "Raw norms of every row, divided by their mean. Embeddings on a thin shell give one narrow "
                    "peak at 1 and a small CV (paper: ≈ 0.09 contrastive, 0.5 supervised).", png(draw_norms(report))),
        FigureImage("pvalues", "Per-feature p-values",
                    "D'Agostino–Pearson p-values of every tested feature. Gaussian features give a flat "
                    "histogram at the dashed uniform line; a spike near 0 is features that fail.",
                    png(draw_pvalues(report))),
        FigureImage("ad_null", "Anderson–Darling A² against its null",
                    f"Per-feature A² (blue) against A² of {NULL_REPLICATES:,} simulated Gaussian samples of "
                    f"n = {n_sim:,} (black outline, seed {NULL_SEED}; past n ≈ {NULL_MAX_N:,} the null no longer "
                    "changes with n). Gaussian data fills the outline; the rule needs the mean A² (dashed) left of "
                    "the red 5% line.", png(draw_ad_null(report, a2_null))),
        *([FigureImage("spectrum", "Covariance eigen-spectrum",
                       "Each eigenvalue of the tested rows' covariance as a share of the total variance, largest "
                       "first. The participation ratio and RankMe (dashed lines) are how many directions the "
                       "variance effectively spreads over: d when every direction has the same variance (the dotted "
                       "line), 1 when one direction has it all; a collapsed representation has a steep spectrum.",
                       png(draw_spectrum(report)))] if spectrum_shares(report) is not None and report.spectrum else []),
    ]


# ----------------------------------------------------------------------------
# along training


def draw_track(result: Track):
    """AD mean, DP mean p, CV and the pass fractions against step, with the
    thresholds as lines: the paper's "Gaussianity tests along training" figure."""
    points = result.points
    steps = np.array([p.step for p in points])
    reports = [p.report for p in points]
    gaussian = np.array([r.verdict.gaussian for r in reports])
    fig = _new_figure(10, 6.4)
    (ax_ad, ax_dp), (ax_cv, ax_pass) = fig.subplots(2, 2, sharex=True)

    def series(ax, values, threshold=None, threshold_label=None, log=False):
        values = np.asarray(values, dtype=np.float64)
        ax.plot(steps, values, color=DATA, linewidth=1.5, zorder=2)
        colours = np.where(gaussian, PASS, FAIL)
        ax.scatter(steps, values, c=colours, s=28, zorder=3, edgecolors="white", linewidths=0.6)
        if threshold is not None:
            ax.axhline(threshold, color=THRESHOLD, linestyle="--", linewidth=1.2, label=threshold_label)
        if log:
            from matplotlib.ticker import FuncFormatter

            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        _style(ax)

    ad = [r.ad_mean for r in reports]
    series(ax_ad, ad, AD_CRITICAL_5PCT, f"{AD_CRITICAL_5PCT}: Gaussian below",
           log=max(ad) / max(min(ad), 1e-12) > 30)
    ax_ad.set_title("AD Avg. (mean A²)", fontsize=10)
    ax_ad.set_ylabel("mean A²")
    # A linear p axis: the rule's question is "above 0.05?", and p-values of
    # 1e-90 and 1e-3 are the same answer; a log axis would squash 0.05-1 flat.
    series(ax_dp, [r.dp_mean_p for r in reports], DP_ALPHA, f"{DP_ALPHA}: Gaussian above")
    ax_dp.set_ylim(0, 1.0 if max(r.dp_mean_p for r in reports) > 0.55 else 0.6)
    ax_dp.set_title("DP Avg. (mean p-value)", fontsize=10)
    ax_dp.set_ylabel("mean p-value")
    series(ax_cv, [r.norm_cv for r in reports])
    ax_cv.set_title("CV of row norms (thin shell when small)", fontsize=10)
    ax_cv.set_ylabel("std / mean of ‖x‖")
    ax_cv.set_ylim(bottom=0)
    ax_pass.plot(steps, [100 * r.ad_pass_fraction for r in reports], "o-", color=DATA, markersize=4,
                 label="AD Norm. Feat.")
    ax_pass.plot(steps, [100 * r.dp_pass_fraction for r in reports], "s-", color=SECOND, markersize=4,
                 label="DP Norm. Feat.")
    ax_pass.axhline(95, color=REFERENCE, linestyle=":", linewidth=1.2, label="≈ 95% for a true Gaussian")
    ax_pass.set_ylim(0, 102)
    ax_pass.set_title("Share of features passing at 5%", fontsize=10)
    ax_pass.set_ylabel("% of features")
    _style(ax_pass)
    from matplotlib.lines import Line2D

    verdict_keys = [Line2D([], [], marker="o", linestyle="", color=PASS, label="Gaussian (rule 'paper')"),
                    Line2D([], [], marker="o", linestyle="", color=FAIL, label="not Gaussian")]
    handles, _ = ax_ad.get_legend_handles_labels()
    ax_ad.legend(handles=handles + verdict_keys, fontsize=8, frameon=False, loc="best")
    ax_dp.legend(fontsize=8, frameon=False, loc="best")
    ax_pass.legend(fontsize=8, frameon=False, loc="lower right")
    for ax in (ax_cv, ax_pass):
        ax.set_xlabel("step (from the file names)")
    title = "Gaussianity tests along training"
    if result.skipped:
        title += f" ({len(result.skipped)} step{'s' if len(result.skipped) > 1 else ''} skipped: " + \
                 ", ".join(str(s.step) for s in result.skipped[:5]) + ("…" if len(result.skipped) > 5 else "") + ")"
    fig.suptitle(title, fontsize=12)
    return fig


def track_png(result: Track) -> bytes:
    """:func:`draw_track` as PNG bytes (``gaussaudit track --plot``)."""
    return png(draw_track(result))


def _skipped_title(title: str, skipped) -> str:
    if not skipped:
        return title
    return (title + f" ({len(skipped)} step{'s' if len(skipped) > 1 else ''} skipped: "
            + ", ".join(str(s.step) for s in skipped[:5]) + ("…" if len(skipped) > 5 else "") + ")")


def draw_track_pairs(result: PairsTrack):
    """Alignment E[u·v] (with the η² bound it implies) and uniformity Φ against step,
    Φ's value for rows uniform on the sphere as a dotted line: whether alignment
    levels off while uniformity still improves (the paper's Assumption 1)."""
    points = result.points
    steps = np.array([p.step for p in points])
    rs = [p.report.result for p in points]
    fig = _new_figure(10, 4.2)
    ax_align, ax_uniform = fig.subplots(1, 2, sharex=True)
    ax_align.plot(steps, [r.alignment for r in rs], "o-", color=DATA, markersize=4, linewidth=1.5,
                  label="alignment E[u·v]", gid="alignment")
    ax_align.plot(steps, [r.eta2_lower for r in rs], "s--", color=SECOND, markersize=3.5, linewidth=1.1,
                  label="η² ≥ (E[u·v] − m²)/(1 − m²)", gid="eta2")
    ax_align.set_title("Alignment of the positive pairs", fontsize=10)
    ax_align.set_ylabel("mean cosine u·v")
    ax_align.legend(fontsize=8, frameon=False, loc="best")
    temperature = result.settings.get("temperature")
    ax_uniform.plot(steps, [r.uniformity for r in rs], "o-", color=DATA, markersize=4, linewidth=1.5,
                    label="uniformity Φ" + (f", τ = {temperature:g}" if temperature else ""), gid="uniformity")
    ax_uniform.plot(steps, [r.uniformity_reference for r in rs], linestyle=":", color=REFERENCE, linewidth=1.6,
                    label="uniform on the sphere", gid="reference")
    ax_uniform.set_title("Uniformity Φ = E log E exp(u·v/τ) (lower = more uniform)", fontsize=10)
    ax_uniform.set_ylabel("Φ")
    ax_uniform.legend(fontsize=8, frameon=False, loc="best")
    for ax in (ax_align, ax_uniform):
        ax.set_xlabel("step (from the folder names)")
        _style(ax)
    fig.suptitle(_skipped_title(f"Alignment and uniformity along training: {_short(result.a, 30)} ↔ "
                                f"{_short(result.b, 30)}", result.skipped), fontsize=12)
    return fig


def track_pairs_png(result: PairsTrack) -> bytes:
    """:func:`draw_track_pairs` as PNG bytes (``gaussaudit track --pairs A B --plot``)."""
    return png(draw_track_pairs(result))


# ----------------------------------------------------------------------------
# paired embeddings (gaussaudit pairs) and scores under a Gaussian model (gaussaudit score)


def _short(label: str, most: int = 40) -> str:
    """A file name or label cut to fit a figure's title."""
    return label if len(label) <= most else "…" + label[-(most - 1):]


def _plain_log_ticks(axis, minor: bool = True) -> None:
    """Numbers (3, 10, 30…) on a log axis instead of powers of ten: d² reads off directly.
    ``minor``: label the 2s and 5s between the decades too (for an axis of a few decades)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    def label_minor(v, _):
        lead = v / 10.0 ** np.floor(np.log10(v)) if v > 0 else 0
        return f"{v:g}" if round(lead) in (2, 5) and abs(lead - round(lead)) < 1e-6 else ""

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(label_minor) if minor else NullFormatter())


def draw_pairs(report: PairsReport):
    """Histograms of the positive-pair cosines u_i·v_i and the negative-pair cosines u_i·v_π(i)
    (π a seeded derangement: one non-matching partner per row) on the fixed bins of
    :func:`~gaussaudit.stats.pairs.cosine_histogram`, with the alignment E[u·v] and the
    mean negative cosine marked, and the cosine of two independent uniform unit vectors
    (exact) as the outline uniform rows would give."""
    from gaussaudit.stats.pairs import COSINE_BINS, cosine_edges, cosine_histogram, uniform_sphere_cosine_shares

    r = report.result
    edges = cosine_edges(COSINE_BINS)
    positive, negative = cosine_histogram(r.positive_cosines), cosine_histogram(r.negative_cosines)
    fig = _new_figure(6.4, 4.2)
    ax = fig.subplots()
    ax.stairs(negative / max(negative.sum(), 1), edges, fill=True, color=REFERENCE, alpha=0.45,
              label=f"negative pairs u_i·v_j, i ≠ j ({int(negative.sum()):,}, seeded)", gid="negative")
    ax.stairs(positive / max(positive.sum(), 1), edges, fill=True, color=DATA, alpha=0.75,
              label=f"positive pairs u_i·v_i ({int(positive.sum()):,})", gid="positive")
    uniform = uniform_sphere_cosine_shares(r.dim, COSINE_BINS)
    if uniform is not None:
        ax.stairs(uniform, edges, color="black", linewidth=1.1, label=f"uniform on the sphere, d = {r.dim}",
                  gid="uniform")
    ax.axvline(r.alignment, color=THRESHOLD, linewidth=1.4, label=f"alignment E[u·v] = {r.alignment:.3f}")
    neg_mean = float(np.mean(r.negative_cosines))
    ax.axvline(neg_mean, color=REFERENCE, linestyle="--", linewidth=1.2, label=f"mean negative cosine {neg_mean:.3f}")
    filled = np.flatnonzero((positive + negative) > 0)
    lo, hi = (edges[filled[0]], edges[filled[-1] + 1]) if filled.size else (-1.0, 1.0)
    pad = max(0.05 * (hi - lo), 2 * (edges[1] - edges[0]))
    ax.set_xlim(max(-1.0, lo - pad), min(1.0, hi + pad))
    ax.set_ylim(bottom=0)
    ax.set_title(f"Cosines of positive and negative pairs: {_short(report.a_label)} ↔ {_short(report.b_label)}\n"
                 f"{r.n:,} pairs, dim {r.dim}, η² ≥ {r.eta2_lower:.3f}", fontsize=10)
    ax.set_xlabel("cosine u·v of the L2-normalised rows")
    ax.set_ylabel("share of pairs per bin")
    _legend_below(fig, ax, ncols=2)
    _style(ax)
    return fig


def pairs_figures(report: PairsReport) -> list[FigureImage]:
    """The figures of ``gaussaudit pairs --html/--plots``, in page order."""
    return [FigureImage("cosines", "Positive against negative pair cosines",
                        "Cosines u·v of the normalised rows: each row with its own pair (blue) and with one other "
                        "row of the other side (grey, a seeded random derangement). The further apart the two, the "
                        "better aligned the pairs are beside how alike unrelated rows look; the red line is the "
                        "alignment E[u·v] the η² bound uses. The black outline is what rows uniform on the sphere "
                        "give for unrelated pairs.", png(draw_pairs(report)))]


def draw_scores(summary: ScoreSummary, bins: int = 60):
    """Histogram of the scored rows' squared Mahalanobis norm d² on a log axis (the share
    of rows per bin), against the held-out reference rows' d² (outline) and the χ²_r law a
    Gaussian gives (dashed), with the OOD threshold and the share of rows flagged past it.
    The log-likelihood is −½(r log 2π + log det Σ + d²): the same figure, mirrored."""
    h = summary.histogram(bins)
    if not h.counts.size:
        raise GaussAuditError("no scored row has a positive squared Mahalanobis norm to draw.")
    edges = 10.0 ** h.log10_edges
    model = summary.fitted.model
    fig = _new_figure(6.4, 4.2)
    ax = fig.subplots()
    scored = int(h.counts.sum())
    ax.stairs(h.counts / max(scored, 1), edges, fill=True, color=DATA, alpha=0.85,
              label=f"scored rows ({scored:,})", gid="scored")
    if h.reference_counts is not None:
        m = int(h.reference_counts.sum())
        ax.stairs(h.reference_counts / max(m, 1), edges, color="black", linewidth=1.3,
                  label=f"held-out reference rows ({m:,})", gid="reference")
    ax.stairs(h.chi2_shares, edges, color=REFERENCE, linestyle="--", linewidth=1.1,
              label=f"χ² law, {model.rank} degrees of freedom", gid="chi2")
    if np.isfinite(h.threshold):
        ax.axvline(h.threshold, color=THRESHOLD, linewidth=1.4,
                   label=f"OOD threshold d² = {h.threshold:.4g} (fpr {summary.fpr:g})")
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis, minor=bool(h.log10_edges[-1] - h.log10_edges[0] < 2.5))
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(bottom=0)
    if h.zero:
        ax.annotate(f"{h.zero:,} row{'s' if h.zero > 1 else ''} with d² = 0 not drawn", xy=(0.01, 0.97),
                    xycoords="axes fraction", ha="left", va="top", fontsize=8, color=REFERENCE)
    ax.set_title(f"Squared Mahalanobis norms under the model of {_short(summary.fitted.source)}\n"
                 f"flagged out of distribution: {summary.flagged:,} of {summary.rows:,} rows "
                 f"({100 * summary.share_flagged:.2f}%) at fpr {summary.fpr:g}", fontsize=10)
    ax.set_xlabel("squared Mahalanobis norm d², log scale")
    ax.set_ylabel("share of rows per bin")
    _legend_below(fig, ax, ncols=2)
    _style(ax)
    return fig


def score_figures(summary: ScoreSummary) -> list[FigureImage]:
    """The figures of ``gaussaudit score --html/--plots``, in page order."""
    return [FigureImage("mahalanobis", "Squared Mahalanobis norms and the OOD threshold",
                        "d² of each scored row (blue) beside the held-out reference rows' (black outline) and the χ² "
                        "law a Gaussian model gives (dashed). Rows right of the red threshold are flagged; rows like "
                        "the reference are flagged at rate at most the fpr. Where blue sits right of the outline the "
                        "rows are further from the reference's mean than its own rows are.",
                        png(draw_scores(summary)))]


# ----------------------------------------------------------------------------
# reproduce: several inputs along training

#: One colour per input of ``gaussaudit reproduce synthetic``.
INPUT_COLOURS = {"laplace": DATA, "gmm": SECOND, "binary": "#6b46c1"}


def draw_reproduce(result: SyntheticResult):
    """The track figure's four panels (AD avg, DP avg, CV, pass fractions) along
    InfoNCE training, one line per input; filled markers are audits the paper's
    rule calls Gaussian, hollow ones are not. The supervised baseline is drawn
    as a cross at the last epoch and the raw input as a dotted line. Summaries
    are of the unnormalised rows, as in the paper's Table 1."""

    def unnormalised(report):
        return report.paper_columns["unnormalised"]

    s = result.settings
    fig = _new_figure(11, 7.2)
    (ax_ad, ax_dp), (ax_cv, ax_pass) = fig.subplots(2, 2, sharex=True)
    ad_all = [unnormalised(r.report).ad_mean for r in result.runs]
    log_ad = max(ad_all) / max(min(ad_all), 1e-12) > 30
    for kind in s.inputs:
        colour = INPUT_COLOURS.get(kind, DATA)
        last = s.epochs_for(kind)
        rows = result.along_training(kind)
        epochs = np.array([r.epoch for r in rows])
        reports = [r.report for r in rows]
        gaussian = np.array([unnormalised(r).verdict.gaussian for r in reports])
        raw = result.run(kind, "input").report
        sup = result.run(kind, "supervised").report
        for ax, get in ((ax_ad, lambda r: unnormalised(r).ad_mean), (ax_dp, lambda r: unnormalised(r).dp_mean_p),
                        (ax_cv, lambda r: r.norm_cv)):
            values = np.array([get(r) for r in reports])
            ax.plot(epochs, values, color=colour, linewidth=1.6, zorder=2, label=f"{kind}: InfoNCE")
            ax.scatter(epochs[gaussian], values[gaussian], color=colour, s=26, zorder=3)
            ax.scatter(epochs[~gaussian], values[~gaussian], facecolors="white", edgecolors=colour, s=26, zorder=3)
            ax.axhline(get(raw), color=colour, linestyle=":", linewidth=1.1, label=f"{kind}: raw input")
            ax.scatter([last], [get(sup)], marker="X", color=colour, s=70, zorder=4, edgecolors="black",
                       linewidths=0.5, label=f"{kind}: supervised")
        ax_pass.plot(epochs, [100 * unnormalised(r).ad_pass_fraction for r in reports], "o-", color=colour,
                     markersize=3.5,
                     label=f"{kind}: AD")
        ax_pass.plot(epochs, [100 * unnormalised(r).dp_pass_fraction for r in reports], "s--", color=colour,
                     markersize=3.5,
                     label=f"{kind}: DP")
    ax_ad.axhline(AD_CRITICAL_5PCT, color=THRESHOLD, linestyle="--", linewidth=1.2)
    ax_ad.annotate(f"{AD_CRITICAL_5PCT}: Gaussian below", (0.99, AD_CRITICAL_5PCT), xycoords=("axes fraction", "data"),
                   xytext=(0, -3), textcoords="offset points", ha="right", va="top", fontsize=8, color=THRESHOLD)
    if log_ad:
        from matplotlib.ticker import FuncFormatter

        ax_ad.set_yscale("log")
        ax_ad.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_ad.set_title("AD Avg. (mean A²)", fontsize=10)
    ax_ad.set_ylabel("mean A²" + (", log scale" if log_ad else ""))
    ax_dp.axhline(DP_ALPHA, color=THRESHOLD, linestyle="--", linewidth=1.2)
    ax_dp.annotate(f"{DP_ALPHA}: Gaussian above", (0.99, DP_ALPHA), xycoords=("axes fraction", "data"), ha="right",
                   va="bottom", fontsize=8, color=THRESHOLD)
    ax_dp.set_ylim(0, 0.6 if max(unnormalised(r.report).dp_mean_p for r in result.runs) <= 0.55 else 1.0)
    ax_dp.set_title("DP Avg. (mean p-value)", fontsize=10)
    ax_dp.set_ylabel("mean p-value")
    ax_cv.set_title("CV of row norms (thin shell when small)", fontsize=10)
    ax_cv.set_ylabel("std / mean of ‖x‖")
    ax_cv.set_ylim(bottom=0)
    ax_pass.axhline(95, color=REFERENCE, linestyle=":", linewidth=1.2)
    ax_pass.set_ylim(0, 102)
    ax_pass.set_title("Share of features passing at 5% (AD solid, DP dashed)", fontsize=10)
    ax_pass.set_ylabel("% of features")
    for ax in (ax_ad, ax_dp, ax_cv, ax_pass):
        _style(ax)
    for ax in (ax_cv, ax_pass):
        ax.set_xlabel("epoch of InfoNCE training")
    from matplotlib.lines import Line2D

    keys = [Line2D([], [], color=INPUT_COLOURS.get(k, DATA), linewidth=2, label=k) for k in s.inputs] + [
        Line2D([], [], color=REFERENCE, marker="o", label="InfoNCE embeddings (filled: Gaussian, hollow: not)"),
        Line2D([], [], color=REFERENCE, linestyle=":", label="raw input"),
        Line2D([], [], color=REFERENCE, marker="X", linestyle="", markersize=8, label="supervised baseline"),
    ]
    fig.legend(handles=keys, loc="outside lower center", ncols=len(keys), fontsize=8, frameon=False)
    fig.suptitle(f"Gaussianity along InfoNCE training (unnormalised rows): {s.encoder} encoder "
                 f"{s.dim_in} → {s.dim_out}, seed {s.seed}", fontsize=12)
    return fig


def reproduce_png(result: SyntheticResult) -> bytes:
    """:func:`draw_reproduce` as PNG bytes (``gaussaudit reproduce synthetic --plot``)."""
    return png(draw_reproduce(result))


def draw_sweep(result: SweepResult):
    """The appendix's sweep figures from ``reproduce synthetic --dims/--batch-sizes``:
    CV of the norms against batch size (one line per dimension), alignment and
    uniformity against dimension (one line per batch size each, uniform-sphere Φ
    dotted), and positive/negative cosine histograms per grid point."""
    points = result.points
    dims, batches = result.dims, result.batch_sizes
    fig = _new_figure(16, 4.4)
    ax_cv, ax_align, ax_unif, ax_cos = fig.subplots(1, 4)
    palette = [DATA, SECOND, "#6b46c1", "#2f855a", "#b7791f", "#c53030", "#2c5282"]
    x_axis, lines_over, x_label = ((batches, dims, "batch size N") if len(batches) > 1 else (dims, batches, "dimension d"))
    for i, held in enumerate(lines_over):
        colour = palette[i % len(palette)]
        chosen = [p for p in points if (p.dim if x_axis is batches else p.batch) == held]
        xs = [p.batch if x_axis is batches else p.dim for p in chosen]
        name = f"d = {held}" if x_axis is batches else f"N = {held}"
        ax_cv.plot(xs, [p.cv for p in chosen], "o-", color=colour, markersize=4, label=name)
    ax_cv.set_xlabel(x_label)
    ax_cv.set_ylabel("std / mean of ‖z‖ (unnormalised)")
    ax_cv.set_title("CV of the norms", fontsize=10)
    ax_cv.set_ylim(bottom=0)
    for i, batch in enumerate(batches):
        colour = palette[i % len(palette)]
        chosen = [p for p in points if p.batch == batch]
        xs = [p.dim for p in chosen]
        ax_align.plot(xs, [p.alignment for p in chosen], "o-", color=colour, markersize=4, label=f"N = {batch}")
        ax_unif.plot(xs, [p.uniformity for p in chosen], "s-", color=colour, markersize=4, label=f"N = {batch}")
    ref = sorted({(p.dim, p.uniformity_reference) for p in points})
    ax_unif.plot([d for d, _ in ref], [u for _, u in ref], ":", color=REFERENCE, linewidth=1.6,
                 label="uniform rows on the sphere")
    ax_align.set_title("Alignment E[u·v] (held-out pairs)", fontsize=10)
    ax_unif.set_title("Uniformity Φ = E log E exp(u·v/τ)", fontsize=10)
    for ax in (ax_align, ax_unif):
        ax.set_xlabel("dimension d")
        if len(dims) > 1:
            ax.set_xscale("log", base=2)
            ax.set_xticks(list(dims), [str(d) for d in dims])
    edges = np.asarray(result.to_dict()["cosine_bins"])
    centres = (edges[:-1] + edges[1:]) / 2
    shown = points
    if len(points) > 8:  # one violin pair per dimension, at one batch size, stays readable
        held = result.settings.batch if result.settings.batch in batches else batches[0]
        shown = [p for p in points if p.batch == held]
    for i, p in enumerate(shown):
        base = i * 1.1
        for hist, colour in ((p.positive_hist, DATA), (p.negative_hist, SECOND)):
            h = np.asarray(hist, dtype=float)
            h = 0.5 * h / h.max() if h.max() > 0 else h
            ax_cos.fill_betweenx(centres, base - h, base + h, color=colour, alpha=0.45, step="mid", linewidth=0)
    ax_cos.set_xticks([i * 1.1 for i in range(len(shown))],
                      [f"d {p.dim}\nN {p.batch}" for p in shown], fontsize=7)
    ax_cos.set_ylim(-1, 1)
    ax_cos.set_ylabel("cosine")
    ax_cos.set_title("Positive (blue) and negative (orange) cosines", fontsize=10)
    for ax in (ax_cv, ax_align, ax_unif, ax_cos):
        _style(ax)
    ax_cv.legend(fontsize=7, frameon=False)
    ax_align.legend(fontsize=7, frameon=False, ncols=2)
    ax_unif.legend(handles=ax_unif.get_lines()[-1:], fontsize=7, frameon=False)
    s = result.settings
    fig.suptitle(f"InfoNCE on Laplace inputs: {s.encoder} encoder {s.dim_in} → d, {s.epochs_for('laplace')} epochs, "
                 f"seed {s.seed}", fontsize=12)
    return fig


def sweep_png(result: SweepResult) -> bytes:
    """:func:`draw_sweep` as PNG bytes (``reproduce synthetic --dims/--batch-sizes --plot``)."""
    return png(draw_sweep(result))


def draw_digits(result: DigitsResult):
    """The paper's CIFAR-10 training-dynamics figure on scikit-learn's digits: CV of
    the norms, AD Avg. and the DP pass share of the held-out embeddings along
    training, InfoNCE against cross-entropy (unnormalised rows), thresholds as lines."""
    fig = _new_figure(12, 3.9)
    ax_cv, ax_ad, ax_dp = fig.subplots(1, 3, sharex=True)
    for model, colour, name in (("contrastive", DATA, "InfoNCE"), ("supervised", SECOND, "cross-entropy")):
        rows = result.along_training(model)
        epochs = [r.epoch for r in rows]
        columns = [r.report.paper_columns["unnormalised"] for r in rows]
        ax_cv.plot(epochs, [r.report.norm_cv for r in rows], "o-", color=colour, markersize=3.5, label=name)
        ax_ad.plot(epochs, [c.ad_mean for c in columns], "o-", color=colour, markersize=3.5, label=name)
        ax_dp.plot(epochs, [100 * c.dp_pass_fraction for c in columns], "o-", color=colour, markersize=3.5, label=name)
    ax_ad.axhline(AD_CRITICAL_5PCT, color=THRESHOLD, linestyle="--", linewidth=1.2)
    ax_ad.annotate(f"{AD_CRITICAL_5PCT}: Gaussian below", (0.99, AD_CRITICAL_5PCT), xycoords=("axes fraction", "data"),
                   xytext=(0, 3), textcoords="offset points", ha="right", va="bottom", fontsize=8, color=THRESHOLD)
    ax_dp.axhline(95, color=REFERENCE, linestyle=":", linewidth=1.2)
    ax_cv.set_title("CV of row norms", fontsize=10)
    ax_ad.set_title("AD Avg. (mean A²)", fontsize=10)
    ax_dp.set_title("Features passing DP at 5%", fontsize=10)
    ax_dp.set_ylim(0, 102)
    ax_dp.set_ylabel("% of features")
    ax_ad.set_yscale("log")
    from matplotlib.ticker import FuncFormatter

    ax_ad.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_ad.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_dp.annotate("95%: expected of normal features", (0.99, 95), xycoords=("axes fraction", "data"),
                   xytext=(0, -3), textcoords="offset points", ha="right", va="top", fontsize=8, color=REFERENCE)
    for ax in (ax_cv, ax_ad, ax_dp):
        _style(ax)
        ax.set_xlabel("epoch")
    ax_cv.set_ylim(bottom=0)
    ax_cv.legend(fontsize=8, frameon=False)
    s = result.settings
    fig.suptitle(f"Digits (scikit-learn), held-out {result.n_test} images: MLP 64 → {s.hidden} → ReLU → {s.dim_out}, "
                 f"seed {s.seed}", fontsize=12)
    return fig


def digits_png(result: DigitsResult) -> bytes:
    """:func:`draw_digits` as PNG bytes (``gaussaudit reproduce digits --plot``)."""
    return png(draw_digits(result))
