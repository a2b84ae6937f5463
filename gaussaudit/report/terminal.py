"""The terminal report: the paper's table for one input, with the settings and\neffect sizes a reader needs to judge it."""
from __future__ import annotations

import textwrap

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gaussaudit.report.table import (
    PAPER_ROWS,
    format_monte_carlo_p,
    format_number,
    norm_display_range,
    settings_summary,
)
from gaussaudit.stats import AD_CRITICAL_5PCT

#: Eighth blocks: a bar of height h rows has 8h levels.
_BLOCKS = " ▁▂▃▄▅▆▇█"
#: Columns and rows of the inline histograms.
HIST_BINS, HIST_HEIGHT = 40, 3
P_BINS = 20


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _sampling_line(report) -> str:
    cfg = report.config
    if report.n_used == report.n_total:
        how = "every row tested"
    elif cfg.sample == 0 or cfg.sample >= report.n_total:
        how = f"tested {report.n_used:,}"
    else:
        how = f"tested {report.n_used:,} (uniform sample, seed {cfg.seed})"
    return f"rows {report.n_total:,} · {how} · dim {report.dim} · {report.dtype}"


def render_terminal(report, console: Console | None = None) -> None:
    """Print ``report`` as the paper's table plus context, to ``console``."""
    console = console or Console()
    cfg = report.config
    names = report.paths if len(report.paths) <= 3 else report.paths[:2] + [f"… ({len(report.paths)} files)"]
    console.print(Text.assemble(("gaussaudit scan", "bold"), " · ", ", ".join(names)))
    console.print(f"  {_sampling_line(report)}")
    prep = "rows L2-normalised" if cfg.normalize else "rows not normalised (--no-normalize)"
    extra = [prep]
    if report.layouts != ["array"]:
        extra.append(f"features from {', '.join(report.layouts)}")
    if len(report.constant_features):
        shown = ", ".join(str(j) for j in report.constant_features[:8])
        more = "…" if len(report.constant_features) > 8 else ""
        extra.append(f"{len(report.constant_features)} constant features left out ({shown}{more})")
    if report.nonfinite_rows_dropped:
        extra.append(f"{report.nonfinite_rows_dropped:,} rows with NaN/inf dropped")
    if report.zero_norm_rows:
        extra.append(f"{report.zero_norm_rows:,} all-zero rows")
    console.print("  " + " · ".join(extra))

    console.print()
    console.print(paper_table(report))
    console.print()
    _tests_block(report, console)
    _effect_sizes(report, console)
    if report.worst_ad_features:
        worst = ", ".join(f"#{w.feature} {w.value:.2f}" for w in report.worst_ad_features)
        console.print(f"    highest A²: {worst}")
    render_inline_histograms(report, console)
    console.print()
    _projections_block(report, console)
    _joint_block(report, console)
    _uniformity_block(report, console)
    _calibration_block(report, console)
    for warning in honesty_notes(report):
        lines = textwrap.wrap(warning, 70)
        console.print(f"  [yellow]note:[/yellow] {lines[0]}")
        for line in lines[1:]:
            console.print(f"        {line}")
    for note in report.notes:
        console.print("  [dim]" + "\n        ".join(textwrap.wrap(f"note: {note}", 76)) + "[/dim]")
    console.print(
        f"  [dim]a pass means no departure detectable at this n ({_test_n(report)}):\n"
        "  not proof. A larger n detects smaller departures: compare at one --sample.[/dim]"
    )
    console.print(f"  [dim]{report.seconds:.2f} s[/dim]")


def _rows_name(report) -> str:
    """The rows the per-feature summaries and the null bands describe."""
    return "normalised" if report.question == "normalised" else "unnormalised"


def _test_n(report) -> str:
    t = report.test
    return f"{report.n_used:,} rows, headline {t.n:,}" if t is not None else f"{report.n_used:,} rows"


def paper_table(report) -> Table:
    """The paper's Table 2 layout: unnormalised and normalised rows side by side,
    the paper's rule on the unnormalised column (its Table 1 protocol)."""
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, padding=(0, 2))
    table.add_column("Metric")
    table.add_column("unnormalised", justify="right")
    table.add_column("normalised", justify="right")
    table.add_column("Gaussian data", style="dim")
    cal = report.calibration
    for row in PAPER_ROWS:
        cells = []
        for column in ("unnormalised", "normalised"):
            ok = row.ok(report, column)
            style = "" if ok is None else ("green" if ok else "red")
            if row.label == "Gaussian?":
                style = "bold " + style + (" dim" if column == "normalised" else "")
            cells.append(Text(row.text(report, column), style=style))
        reference = row.reference
        if row.label == "CV" and cal is not None and cal.norm_cv is not None:
            reference = f"{cal.norm_cv.null_mean:.3f} (this cov.)"
        table.add_row(Text(row.label, style="bold" if row.label == "Gaussian?" else ""), *cells, reference)
    return table


def _test_line(t, asked: bool) -> Text:
    what = {"raw": "Gaussian? (raw rows)", "normalised": "normalised Gaussian? (normalised rows)"}[t.question]
    p = format_monte_carlo_p(t.p_value, t.replicates)
    mark = Text("✓", style="bold green") if t.gaussian else Text("✗", style="bold red")
    return Text.assemble(f"    {what:<40}", f"p {p:<8}", mark, "  (asked)" if asked else "")


def _tests_block(report, console: Console) -> None:
    tests = report.tests
    if not tests:
        console.print("  [dim]headline tests skipped (--calibrate 0): only the paper's heuristic rule below.[/dim]")
    else:
        t = report.test
        console.print(f"  [bold]Headline tests[/bold] (level {100 * t.alpha:g}%, {t.replicates} Gaussian surrogates, "
                      f"{t.n:,} rows)")
        for q, test in tests.items():
            console.print(_test_line(test, q == report.question))
        if report.calibration.prenormalised:
            console.print("  [dim]rows arrive L2-normalised: the raw rows are not there to test. normalised:\n"
                          "  H0 = the rows are x/‖x‖ of some Gaussian x (fitted to these directions).[/dim]")
        else:
            console.print("  [dim]raw: H0 = rows i.i.d. Gaussian with the sample's mean and covariance;\n"
                          "  normalised: H0 = such rows L2-normalised (uniform on the sphere if isotropic).[/dim]")
        console.print("  [dim]Statistic: truncated product of the DP K² of every coordinate and random\n"
                      "  projection, each centred on the null's mean; its null simulated (Monte Carlo).[/dim]")
        verdict = "Gaussian" if t.gaussian else "not Gaussian"
        style = "bold green" if t.gaussian else "bold red"
        what = "no departure from" if t.gaussian else "departs from"
        console.print(Text.assemble("  verdict: ", (verdict, style),
                                    f" — {what} the {t.question} null at the {100 * t.alpha:g}% level"))
    paper = report.verdict
    console.print(Text.assemble("  paper rule (on unnormalised rows; a heuristic, not a test): ",
                                ("Gaussian" if paper.gaussian else "not Gaussian",
                                 "green" if paper.gaussian else "red")))
    for reason in paper.reasons:
        console.print(f"    {reason}")


def _effect_sizes(report, console: Console) -> None:
    sk, ku = report.skewness_worst, report.excess_kurtosis_worst
    cal = report.calibration
    bands = None if cal is None else cal.bands[report.question]
    null_n = "" if bands is None else f"; null: Gaussian surrogates, n = {cal.n:,}"
    console.print(f"  effect sizes ({_rows_name(report)} rows{null_n}):")

    def excess(name: str) -> str:
        if bands is None:
            return ""
        b = bands[name]
        return f" (null {b.null_mean:.3f}: excess {b.observed - b.null_mean:+.3f})"

    console.print(f"    median |skewness| {report.skewness_median_abs:.3f}{excess('skewness.median_abs')}, "
                  f"worst {sk.value:+.3f} (#{sk.feature})")
    console.print(f"    median |ex. kurtosis| {report.excess_kurtosis_median_abs:.3f}"
                  f"{excess('excess_kurtosis.median_abs')}, worst {ku.value:+.3f} (#{ku.feature})")
    m = report.moments
    if m is not None and m.count > report.n_used and (~m.constant).any():
        # The tests see the sample; the moments were accumulated over every row.
        ok = ~m.constant
        console.print(f"    every row ({m.count:,}): median |skewness| {np.median(np.abs(m.skewness[ok])):.3f}, "
                      f"median |excess kurtosis| {np.median(np.abs(m.excess_kurtosis[ok])):.3f}")


def honesty_notes(report) -> list[str]:
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
    if cal is not None and cal.prenormalised:
        out.append("the rows arrive L2-normalised (every norm the same): the norm CV, the unnormalised column "
                   "and the joint tests describe unit rows, not the embeddings before normalisation.")
    elif cal is not None:
        b = cal.norm_cv
        if report.norm_cv > b.null_high:
            out.append(f"norm CV {report.norm_cv:.3f} is above what a Gaussian of this covariance gives "
                       f"({b.null_low:.3f}–{b.null_high:.3f}): the shell is thicker than Gaussian.")
        elif report.norm_cv < b.null_low:
            out.append(f"norm CV {report.norm_cv:.3f} is below what a Gaussian of this covariance gives "
                       f"({b.null_low:.3f}–{b.null_high:.3f}): the shell is thinner than Gaussian (e.g. rows "
                       "already normalised).")
    if report.config.normalize:
        out.append("L2 normalisation removes each row's norm: heavy tails shared by a whole row (elliptical, "
                   "e.g. multivariate t) vanish from normalised rows; the raw test, the joint tests and the "
                   "norm CV still see them.")
    return out


def _p(p: float) -> str:
    return "< 1e-300" if p == 0 else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


def _mark(ok: bool) -> Text:
    return Text("✓", style="green") if ok else Text("✗", style="red")


def _projections_block(report, console: Console) -> None:
    projections = [p for p in (report.projections_random, report.projections_pca) if p is not None]
    if not projections:
        return
    table = Table(box=None, pad_edge=False, padding=(0, 2), header_style="bold")
    for name, justify in (("Projections", "left"), ("AD Avg.", "right"), ("AD Norm.", "right"),
                          ("DP Avg.", "right"), ("DP Norm.", "right"), ("", "left")):
        table.add_column(name, justify=justify)
    failing = []
    for p in projections:
        label = (f"random ({p.k} directions)" if p.kind == "random"
                 else f"principal (top {p.k}, {100 * p.explained:.0f}% var.)")
        ok = p.ad_mean < AD_CRITICAL_5PCT and p.dp_mean_p > 0.05
        table.add_row(label, f"{p.ad_mean:.3f}", _pct(p.ad_pass_fraction), f"{p.dp_mean_p:.3f}",
                      _pct(p.dp_pass_fraction), _mark(ok))
        if not ok:
            failing.append(p.kind)
    console.print(table)
    # an explanation only under the row it explains
    for kind in failing:
        console.print("  [dim]" + _PROJECTION_FAILS[kind] + "[/dim]")
    console.print()


_PROJECTION_FAILS = {
    "random": "random fails: projections in general are not Gaussian (no Maxwell-Poincaré).",
    "pca": "principal fails: structure, e.g. clusters, along the main axes of variation.",
}


def _joint_block(report, console: Console) -> None:
    mv = report.multivariate
    if mv is None:
        return
    space = (f"top {mv.dim}/{mv.source_dim} PCs, {100 * mv.explained:.0f}% var."
             if mv.dim < mv.source_dim else f"all {mv.dim} dimensions")
    console.print(f"[bold]Joint Gaussianity of the raw rows[/bold] ({mv.n:,} rows, {space})")
    mar, hz, en, m = mv.mardia, mv.henze_zirkler, mv.energy, mv.mahalanobis
    console.print(Text.assemble(f"    Mardia skewness p {_p(mar.skewness_p)} ", _mark(mar.skewness_p > 0.05),
                                f"  kurtosis z {mar.kurtosis_statistic:+.2f}, p {_p(mar.kurtosis_p)} ",
                                _mark(mar.kurtosis_p > 0.05)))
    console.print(Text.assemble(f"    Henze-Zirkler {hz.statistic:.3f}, p {_p(hz.p_value)} ", _mark(hz.p_value > 0.05),
                                f"  energy {en.statistic:.3f}, p {format_monte_carlo_p(en.p_value, en.replicates)} ", _mark(en.p_value > 0.05)))
    if m is not None:
        console.print(Text.assemble(f"    Mahalanobis D² vs its Beta law: KS {m.statistic:.3f}, p {format_monte_carlo_p(m.p_value, m.replicates)} ",
                                    _mark(m.p_value > 0.05)))
    failed = min(mar.skewness_p, mar.kurtosis_p, hz.p_value, en.p_value,
                 1.0 if m is None else m.p_value) <= 0.05
    meaning = ("✗: not jointly Gaussian in these directions, even where each projection\n  looks so."
               if failed else "all pass: no joint departure detectable in these directions at this n.")
    console.print(f"  [dim]each at 5%; energy and Mahalanobis p by Monte Carlo ({en.replicates} replicates).\n"
                  f"  {meaning}[/dim]")
    console.print()


def _uniformity_block(report, console: Console) -> None:
    u = report.uniformity
    if u is None:
        return
    console.print(f"[bold]Uniform on the sphere?[/bold] (normalised rows, {u.n:,})")
    console.print(Text.assemble(f"    Rayleigh (mean, ‖ū‖ = {u.mean_resultant_length:.3f}) p {_p(u.rayleigh_p)} ",
                                _mark(u.rayleigh_p > 0.05), f"  Bingham (axes) p {_p(u.bingham_p)} ",
                                _mark(u.bingham_p > 0.05)))
    console.print("  [dim]uniform is what normalised isotropic, mean-zero Gaussian rows give; a mean\n"
                  "  direction or unequal variances fail it even when raw rows are Gaussian.[/dim]")
    console.print()


_BAND_LABELS = {
    "statistic": "headline statistic",
    "dp.mean_p": "DP Avg.",
    "dp.pass_fraction": "DP Norm. Feat.",
    "skewness.median_abs": "median |skewness|",
    "excess_kurtosis.median_abs": "median |excess kurtosis|",
}


def _calibration_block(report, console: Console) -> None:
    cal = report.calibration
    if cal is None:
        return
    console.print(f"[bold]Null bands[/bold] ({cal.replicates} Gaussian surrogates, {cal.n:,} rows, prepared as "
                  f"the data;\n  each band holds {100 * cal.coverage:.0f}% of Gaussian samples)")
    table = Table(box=None, pad_edge=False, padding=(0, 2), header_style="bold")
    for name, justify in (("Metric", "left"), ("Observed", "right"), ("Null band", "right"), ("Percentile", "right")):
        table.add_column(name, justify=justify)
    rows = [] if cal.norm_cv is None else [("CV (norms, raw)", cal.norm_cv)]
    rows += [(_BAND_LABELS[name], band) for name, band in cal.bands[report.question].items()]
    for label, band in rows:
        table.add_row(label, Text(format_number(band.observed), style="" if band.inside else "yellow"),
                      f"{format_number(band.null_low)} – {format_number(band.null_high)}", f"{band.percentile:.0f}")
    console.print(table)
    rows_text = f"{_rows_name(report)} rows" + (", the CV of raw norms" if cal.norm_cv is not None else "")
    console.print(f"  [dim]{rows_text}.\n  Outside a band (yellow): beyond what n and normalisation explain; with\n"
                  "  several bands one falls outside by chance more often than 10%: the headline\n"
                  "  test is the verdict.[/dim]")
    console.print()


# ----------------------------------------------------------------------------
# inline histograms: a quick look without a browser


def histogram_rows(counts, height: int = HIST_HEIGHT, top: float | None = None) -> list[str]:
    """Bars ``height`` text rows tall drawn with eighth blocks, top row first.

    ``top`` is the count that fills a whole column (default the largest count);
    a bar with any count shows at least one eighth, so no data is invisible.

    Examples
    --------
    >>> histogram_rows([0, 1, 2, 4], height=1)
    [' ▂▄█']
    >>> histogram_rows([1, 8], height=2)
    [' █', '▂█']
    """
    counts = np.asarray(counts, dtype=np.float64)
    top = float(top if top is not None else counts.max()) or 1.0
    levels = np.minimum(np.round(counts / top * 8 * height), 8 * height).astype(int)
    levels[(counts > 0) & (levels == 0)] = 1
    rows = []
    for r in range(height):
        filled = np.clip(levels - (height - 1 - r) * 8, 0, 8)
        rows.append("".join(_BLOCKS[v] for v in filled))
    return rows


def render_inline_histograms(report, console: Console) -> None:
    """Histograms of raw row norms (a thin shell is one narrow peak) and of the
    per-feature D'Agostino-Pearson p-values (flat = uniform = what a Gaussian gives)."""
    hist = report.norm_histogram
    if hist is not None and hist.count:
        lo, hi = norm_display_range(hist)
        counts, _ = hist.rebinned(lo, hi, HIST_BINS)
        outside = hist.count - int(counts.sum())
        note = f"; {outside:,} outside the range shown" if outside else ""
        console.print(f"  row norms (raw, every row; CV {format_number(report.norm_cv)}{note}):")
        for row in histogram_rows(counts):
            console.print(Text("    " + row, style="cyan"))
        console.print(f"    {format_number(lo):<{HIST_BINS // 2}}{format_number(hi):>{HIST_BINS // 2}}")
    p = report.features.dp.pvalue
    p = p[np.isfinite(p)]
    if p.size:
        counts = np.histogram(p, bins=P_BINS, range=(0.0, 1.0))[0]
        uniform = p.size / P_BINS
        # Scale so a uniform spread fills half the height: flat and half-full
        # reads as Gaussian, a tall first column as features that fail.
        top = max(float(counts.max()), 2 * uniform)
        console.print(f"  DP p-values of the {p.size:,} features (flat at half height = uniform = Gaussian):")
        for r, row in enumerate(histogram_rows(counts, top=top)):
            console.print(Text("    " + "".join(ch * 2 for ch in row), style="magenta"))
        console.print(f"    {'0':<{P_BINS}}{'1':>{P_BINS}}  [dim]{int(counts[0]):,} below {1 / P_BINS:g}[/dim]")


# ----------------------------------------------------------------------------
# several reports: compare and track


def _paper_table(first_header: str, columns) -> Table:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, padding=(0, 2))
    table.add_column(first_header)
    for label, _ in columns:
        table.add_column(label, justify="right", overflow="fold")
    for row in PAPER_ROWS:
        cells = []
        for _, report in columns:
            ok = row.ok(report)
            style = "" if ok is None else ("green" if ok else "red")
            if row.label == "Gaussian?":
                style = "bold " + style
            cells.append(Text(row.text(report), style=style))
        table.add_row(Text(row.label, style="bold" if row.label == "Gaussian?" else ""), *cells)
    return table


def render_terminal_compare(comparison, console: Console | None = None) -> None:
    """The paper's table with one column per input."""
    console = console or Console()
    columns = [(c.label, c.report) for c in comparison.columns]
    console.print(Text.assemble(("gaussaudit compare", "bold"), f" · {len(columns)} inputs"))
    console.print(f"  {settings_summary(comparison.reports)}")
    console.print()
    console.print(_paper_table("Metric", columns))
    console.print()
    for label, report in columns:
        if not report.verdict.gaussian:
            console.print(f"  {label}: " + "; ".join(report.verdict.reasons), highlight=False)
    console.print("  [dim]compare at the same --sample: a larger n detects smaller departures.[/dim]")


def render_terminal_track(result, console: Console | None = None) -> None:
    """One row per step: the paper's metrics along training."""
    console = console or Console()
    console.print(Text.assemble(("gaussaudit track", "bold"), f" · {len(result.points)} steps"))
    if result.points:
        console.print(f"  {settings_summary([p.report for p in result.points])}")
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, padding=(0, 2))
    table.add_column("Step", justify="right")
    for row in PAPER_ROWS:
        table.add_column(row.short, justify="right")
    for point in result.points:
        cells = []
        for row in PAPER_ROWS:
            ok = row.ok(point.report)
            cells.append(Text(row.text(point.report), style="" if ok is None else ("green" if ok else "red")))
        table.add_row(str(point.step), *cells)
    console.print()
    console.print(table)
    console.print()
    console.print(f"  [dim]Gaussian: AD Avg. < {AD_CRITICAL_5PCT} and DP Avg. > 0.05. Norm.: share passing at 5%.[/dim]")
    if result.skipped:
        steps = ", ".join(str(s.step) for s in result.skipped)
        console.print(Text.assemble(("  skipped", "yellow"), f": step {steps} (could not be audited; why is on stderr)"))


# ----------------------------------------------------------------------------
# reproduce


def render_terminal_reproduce(result, console: Console | None = None) -> None:
    """The paper-style table of ``gaussaudit reproduce synthetic``: per input,
    one column per stage (raw input, init, trained InfoNCE, supervised), then
    AD/DP averages along training and the paper's numbers for comparison."""
    from gaussaudit.reproduce.synthetic import PAPER_TABLE

    console = console or Console()
    s = result.settings
    console.print(Text.assemble(("gaussaudit reproduce synthetic", "bold"),
                                f" · {s.encoder} encoder {s.dim_in} → {s.dim_out} · seed {s.seed}"))
    first = result.runs[0].report
    console.print(f"  InfoNCE τ = {s.tau} · {s.epochs} epochs · {s.n:,} training rows · batch {s.batch} · Adam {s.lr}")
    console.print(f"  audits: {first.n_used:,} held-out rows each; tables of the unnormalised rows (the paper's "
                  f"Table 1), curves of the L2-normalised ones · {result.seconds:.0f} s")
    stages = (("input", "raw input"), ("init", "init (E0)"), ("trained", f"InfoNCE E{s.epochs}"),
              ("supervised", "supervised"))
    for kind in s.inputs:
        columns = [(label, result.run(kind, stage).report) for stage, label in stages]
        console.print()
        console.print(_paper_table(kind, columns))
    console.print()
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, padding=(0, 2),
                  title="AD Avg. / DP Avg. along InfoNCE training", title_justify="left", title_style="bold")
    table.add_column("Epoch", justify="right")
    for kind in s.inputs:
        table.add_column(f"{kind}\nAD Avg.", justify="right")
        table.add_column(f"{kind}\nDP Avg.", justify="right")
    epochs = sorted({r.epoch for kind in s.inputs for r in result.along_training(kind)})
    for epoch in epochs:
        cells = []
        for kind in s.inputs:
            rows = [r for r in result.along_training(kind) if r.epoch == epoch]
            if not rows:
                cells += ["", ""]
                continue
            rep = rows[0].report
            cells.append(Text(format_number(rep.ad_mean), style="green" if rep.ad_mean < AD_CRITICAL_5PCT else "red"))
            cells.append(Text(format_number(rep.dp_mean_p), style="green" if rep.dp_mean_p > 0.05 else "red"))
        table.add_row(str(epoch), *cells)
    console.print(table)
    console.print()
    console.print("  [dim]Gaussian: AD Avg. < 0.752 and DP Avg. > 0.05. Norm.: share passing at 5%.[/dim]")
    console.print("  [dim]paper (poster table, synthetic, linear encoder; docs/reproduce.md):[/dim]")
    for name, v in PAPER_TABLE.items():
        if name in ("Laplace", "GMM", "Binary"):
            console.print(f"  [dim]  {name:8s} CV {v['cv']:.2f} · AD {v['ad_mean']:.2f} · DP {v['dp_mean_p']:.2f} · "
                          f"{'✓' if v['gaussian'] else '✗'}[/dim]")
