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
    from gaussaudit.compare import Track
    from gaussaudit.reproduce.synthetic import SyntheticResult

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
FIGURE_NAMES = ("qq", "qq_random", "qq_pca", "norms", "pvalues", "ad_null")


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


# ----------------------------------------------------------------------------
# reproduce: several inputs along training

#: One colour per input of ``gaussaudit reproduce synthetic``.
INPUT_COLOURS = {"laplace": DATA, "gmm": SECOND, "binary": "#6b46c1"}


def draw_reproduce(result: SyntheticResult):
    """The track figure's four panels (AD avg, DP avg, CV, pass fractions) along
    InfoNCE training, one line per input; filled markers are audits the paper's
    rule calls Gaussian, hollow ones are not. The supervised baseline is drawn
    as a cross at the last epoch and the raw input as a dotted line."""
    s = result.settings
    fig = _new_figure(11, 7.2)
    (ax_ad, ax_dp), (ax_cv, ax_pass) = fig.subplots(2, 2, sharex=True)
    last = s.epochs
    ad_all = [r.report.ad_mean for r in result.runs]
    log_ad = max(ad_all) / max(min(ad_all), 1e-12) > 30
    for kind in s.inputs:
        colour = INPUT_COLOURS.get(kind, DATA)
        rows = result.along_training(kind)
        epochs = np.array([r.epoch for r in rows])
        reports = [r.report for r in rows]
        gaussian = np.array([r.verdict.gaussian for r in reports])
        raw = result.run(kind, "input").report
        sup = result.run(kind, "supervised").report
        for ax, get in ((ax_ad, lambda r: r.ad_mean), (ax_dp, lambda r: r.dp_mean_p), (ax_cv, lambda r: r.norm_cv)):
            values = np.array([get(r) for r in reports])
            ax.plot(epochs, values, color=colour, linewidth=1.6, zorder=2, label=f"{kind}: InfoNCE")
            ax.scatter(epochs[gaussian], values[gaussian], color=colour, s=26, zorder=3)
            ax.scatter(epochs[~gaussian], values[~gaussian], facecolors="white", edgecolors=colour, s=26, zorder=3)
            ax.axhline(get(raw), color=colour, linestyle=":", linewidth=1.1, label=f"{kind}: raw input")
            ax.scatter([last], [get(sup)], marker="X", color=colour, s=70, zorder=4, edgecolors="black",
                       linewidths=0.5, label=f"{kind}: supervised")
        ax_pass.plot(epochs, [100 * r.ad_pass_fraction for r in reports], "o-", color=colour, markersize=3.5,
                     label=f"{kind}: AD")
        ax_pass.plot(epochs, [100 * r.dp_pass_fraction for r in reports], "s--", color=colour, markersize=3.5,
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
    ax_dp.set_ylim(0, 0.6 if max(r.report.dp_mean_p for r in result.runs) <= 0.55 else 1.0)
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
    fig.suptitle(f"Gaussianity along InfoNCE training: {s.encoder} encoder {s.dim_in} → {s.dim_out}, "
                 f"seed {s.seed}", fontsize=12)
    return fig


def reproduce_png(result: SyntheticResult) -> bytes:
    """:func:`draw_reproduce` as PNG bytes (``gaussaudit reproduce synthetic --plot``)."""
    return png(draw_reproduce(result))
