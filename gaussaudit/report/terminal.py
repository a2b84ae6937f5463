"""The terminal report: the paper's table for one input, with the settings and
effect sizes a reader needs to judge it."""
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

    sk, ku = report.skewness_worst, report.excess_kurtosis_worst
    console.print("  effect sizes (do not grow with n):")
    console.print(f"    median |skewness| {report.skewness_median_abs:.3f}, worst {sk.value:+.3f} (feature {sk.feature})")
    console.print(
        f"    median |excess kurtosis| {report.excess_kurtosis_median_abs:.3f}, worst {ku.value:+.3f} (feature {ku.feature})"
    )
    if report.worst_ad_features:
        worst = ", ".join(f"#{w.feature} {w.value:.2f}" for w in report.worst_ad_features)
        console.print(f"    highest A²: {worst}")
    verdict = "Gaussian" if report.verdict.gaussian else "not Gaussian"
    style = "bold green" if report.verdict.gaussian else "bold red"
    console.print(Text.assemble("  verdict: ", (verdict, style)))
    for reason in report.verdict.reasons:
        console.print(f"    {reason}")
    console.print(
        f"  [dim]n = {report.n_used:,}: a pass means no departure detectable at this n, not proof;\n"
        "  a larger n detects smaller departures, so compare models at the same --sample.[/dim]"
    )
    console.print(f"  [dim]{report.seconds:.2f} s[/dim]")
