"""The terminal report: the paper's table for one input, with the settings and\neffect sizes a reader needs to judge it."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gaussaudit.stats import AD_CRITICAL_5PCT


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

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, padding=(0, 2))
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    table.add_column("Gaussian when", style="dim")
    ad_ok = report.ad_mean < AD_CRITICAL_5PCT
    dp_ok = report.dp_mean_p > 0.05
    table.add_row("CV (norms)", f"{report.norm_cv:.3f}", "small: thin shell (paper ≈ 0.1)")
    table.add_row(f"AD Avg. (< {AD_CRITICAL_5PCT})", Text(f"{report.ad_mean:.3f}", style="green" if ad_ok else "red"),
                  "< 0.752; ≈ 0.38 for a true Gaussian")
    table.add_row("AD Norm. Feat.", _pct(report.ad_pass_fraction), "high; ≈ 95% for a true Gaussian")
    table.add_row("DP Avg. (> 0.05)", Text(f"{report.dp_mean_p:.3f}", style="green" if dp_ok else "red"),
                  "> 0.05; ≈ 0.5 for a true Gaussian")
    table.add_row("DP Norm. Feat.", _pct(report.dp_pass_fraction), "high; ≈ 95% for a true Gaussian")
    mark = Text("✓", style="bold green") if report.verdict.gaussian else Text("✗", style="bold red")
    table.add_row(Text("Gaussian?", style="bold"), mark, f"rule '{report.verdict.rule}'")
    console.print()
    console.print(table)
    console.print()

    verdict = "Gaussian" if report.verdict.gaussian else "not Gaussian"
    style = "bold green" if report.verdict.gaussian else "bold red"
    console.print(Text.assemble("  verdict: ", (verdict, style)))
    for reason in report.verdict.reasons:
        console.print(f"    {reason}")

    sk, ku = report.skewness_worst, report.excess_kurtosis_worst
    console.print("  effect sizes (do not grow with n):")
    console.print(f"    median |skewness| {report.skewness_median_abs:.3f}, worst {sk.value:+.3f} (feature {sk.feature})")
    console.print(
        f"    median |excess kurtosis| {report.excess_kurtosis_median_abs:.3f}, worst {ku.value:+.3f} (feature {ku.feature})"
    )
    if report.worst_ad_features:
        worst = ", ".join(f"#{w.feature} {w.value:.2f}" for w in report.worst_ad_features)
        console.print(f"    highest A²: {worst}")
    console.print()
    _projections_block(report, console)
    _joint_block(report, console)
    _calibration_block(report, console)
    for note in report.notes:
        console.print(f"  [dim]note: {note}[/dim]")
    console.print(
        f"  [dim]n = {report.n_used:,}: a pass means no departure detectable at this n, not proof;\n"
        "  a larger n detects smaller departures, so compare models at the same --sample.[/dim]"
    )
    console.print(f"  [dim]{report.seconds:.2f} s[/dim]")


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
    for p in projections:
        label = (f"random ({p.k} directions)" if p.kind == "random"
                 else f"principal (top {p.k}, {100 * p.explained:.0f}% var.)")
        ok = p.ad_mean < AD_CRITICAL_5PCT and p.dp_mean_p > 0.05
        table.add_row(label, f"{p.ad_mean:.3f}", _pct(p.ad_pass_fraction), f"{p.dp_mean_p:.3f}",
                      _pct(p.dp_pass_fraction), _mark(ok))
    console.print(table)
    console.print("  [dim]random fails: projections in general are not Gaussian (no Maxwell-Poincaré);\n"
                  "  principal fails: structure, e.g. clusters, along the main axes of variation.[/dim]")
    console.print()


def _joint_block(report, console: Console) -> None:
    m, mv = report.mahalanobis, report.multivariate
    if m is None and mv is None:
        return
    console.print("[bold]Joint Gaussianity[/bold]")
    if m is not None:
        console.print(Text.assemble(
            f"  Mahalanobis D² vs χ²({m.rank}): KS {m.statistic:.3f}, p {_p(m.p_value)} ", _mark(m.p_value > 0.05),
            f" (mean {m.mean_d2:.1f}, expect {m.expected_mean_d2:.1f})"))
        if report.config.normalize:
            console.print("  [dim]normalised rows lie on a sphere, so D² is nearly constant: this fails by\n"
                          "  construction, a different question from projections; --no-normalize asks\n"
                          "  it of the raw rows.[/dim]")
        else:
            console.print("  [dim]fails: a Gaussian likelihood model misjudges how far rows lie from the\n"
                          "  mean.[/dim]")
    if mv is not None:
        space = (f"top {mv.dim}/{mv.source_dim} PCs, {100 * mv.explained:.0f}% var."
                 if mv.dim < mv.source_dim else f"all {mv.dim} dimensions")
        console.print(f"  multivariate ({mv.n:,} rows, {space}):")
        mar, hz, en = mv.mardia, mv.henze_zirkler, mv.energy
        console.print(Text.assemble(f"    Mardia skewness p {_p(mar.skewness_p)} ", _mark(mar.skewness_p > 0.05),
                                    f"  kurtosis z {mar.kurtosis_statistic:+.2f}, p {_p(mar.kurtosis_p)} ",
                                    _mark(mar.kurtosis_p > 0.05)))
        console.print(Text.assemble(f"    Henze-Zirkler {hz.statistic:.3f}, p {_p(hz.p_value)} ", _mark(hz.p_value > 0.05),
                                    f"  energy {en.statistic:.3f}, p {_p(en.p_value)} ",
                                    _mark(en.p_value > 0.05)))
        console.print("  [dim]fail: not jointly Gaussian, even where each projection looks so.[/dim]")
    console.print()


_CALIBRATION_LABELS = {
    "norm_cv": "CV (norms)",
    "ad.mean": "AD Avg.",
    "ad.pass_fraction": "AD Norm. Feat.",
    "dp.mean_p": "DP Avg.",
    "dp.pass_fraction": "DP Norm. Feat.",
    "projections.random.ad.mean": "random proj. AD Avg.",
    "projections.random.dp.mean_p": "random proj. DP Avg.",
    "projections.pca.ad.mean": "principal proj. AD Avg.",
    "projections.pca.dp.mean_p": "principal proj. DP Avg.",
}


def _calibration_block(report, console: Console) -> None:
    cal = report.calibration
    if cal is None:
        return
    console.print(f"[bold]Calibrated null[/bold] ({cal.replicates} Gaussian surrogates, same mean, cov., n, d)")
    table = Table(box=None, pad_edge=False, padding=(0, 2), header_style="bold")
    for name, justify in (("Metric", "left"), ("Observed", "right"), ("Null 5-95%", "right"), ("Percentile", "right")):
        table.add_column(name, justify=justify)
    for name, band in cal.metrics.items():
        inside = band.null_low <= band.observed <= band.null_high
        table.add_row(_CALIBRATION_LABELS.get(name, name), Text(f"{band.observed:.3f}", style="" if inside else "yellow"),
                      f"{band.null_low:.3f} – {band.null_high:.3f}", f"{band.percentile:.0f}")
    console.print(table)
    console.print("  [dim]band: what a Gaussian with this covariance shows at this n, same preparation;\n"
                  "  outside it: a departure beyond what sample size and normalisation explain.[/dim]")
    ok = cal.gaussian
    console.print(Text.assemble("  calibrated verdict: ", ("Gaussian" if ok else "not Gaussian", "bold green" if ok else "bold red"),
                                " (AD Avg. ≤ null 95%, DP Avg. ≥ null 5%)"))
    console.print()
