"""The Gaussian model and its scores in the terminal and as an HTML page: what was fitted, and how
the scored rows sit against the reference (share flagged, score quantiles)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from gaussaudit.likelihood import FittedModel, ScoreSummary


def _gaussian_line(fitted: FittedModel) -> str:
    if fitted.gaussian is None:
        return "not audited: whether a Gaussian describes these rows is unknown (scores are those of the fitted Gaussian)"
    if fitted.gaussian:
        return "the headline test does not reject a Gaussian for these rows: likelihoods are those of a fitting model"
    return ("the headline test rejects a Gaussian for these rows: likelihoods and χ² p-values are those of the fitted "
            "Gaussian, not of the data; the OOD flag (held-out rows) holds its rate all the same")


def render_terminal_fit(fitted: FittedModel, out: str, console: Console) -> None:
    m = fitted.model
    rows = "L2-normalised rows" if fitted.normalized else "rows as given"
    console.print(f"[bold]gaussaudit fit[/bold] · {escape(fitted.source)} → {escape(out)}")
    console.print(f"  {m.n:,} rows fitted ({rows}) · dim {m.dim} · rank {m.rank} · "
                  f"log det Σ {m.log_det:.4g} · {m.calibration.shape[0]:,} rows held out for the OOD flag")
    console.print(f"  {escape(_gaussian_line(fitted))}")
    for note in fitted.notes:
        console.print(f"  [dim]note: {escape(note)}[/dim]")


def render_terminal_scores(summary: ScoreSummary, out: str | None, console: Console) -> None:
    d = summary.to_dict()
    target = f" → {escape(out)}" if out else ""
    console.print(f"[bold]gaussaudit score[/bold] · model of {escape(summary.fitted.source)}{target}")
    table = Table(show_header=True, header_style="bold")
    table.add_column("per row")
    for q in ("q01", "q05", "q50", "q95", "q99"):
        table.add_column(f"{int(q[1:])}%", justify="right")
    table.add_row("log-likelihood", *(f"{d['log_likelihood'][q]:.4g}" for q in ("q01", "q05", "q50", "q95", "q99")))
    table.add_row(f"Mahalanobis² (χ²_{summary.fitted.model.rank} if Gaussian)",
                  *(f"{d['mahalanobis_sq'][q]:.4g}" for q in ("q01", "q05", "q50", "q95", "q99")))
    console.print(table)
    dropped = f" ({summary.dropped:,} non-finite rows left out)" if summary.dropped else ""
    console.print(f"  {summary.rows:,} rows scored{dropped}; flagged out of distribution: {summary.flagged:,} "
                  f"({summary.share_flagged:.2%}) at fpr {summary.fpr:g}, by {escape(summary.flagged_by)}; rows like "
                  f"the reference are flagged at rate at most {summary.fpr:g}")
    console.print(f"  [dim]{escape(_gaussian_line(summary.fitted))}[/dim]")


def score_sections(summary: ScoreSummary, out: str | None = None) -> list:
    """What the terminal says about scored rows, as
    :class:`~gaussaudit.report.sections.Section` objects (the HTML page draws them)."""
    from gaussaudit.report.sections import Cell, Section

    d = summary.to_dict()
    m = summary.fitted.model
    quantiles = ("q01", "q05", "q50", "q95", "q99")
    rows = ((Cell("log-likelihood"), *(Cell(f"{d['log_likelihood'][q]:.4g}") for q in quantiles)),
            (Cell(f"Mahalanobis² (χ²_{m.rank} if Gaussian)"), *(Cell(f"{d['mahalanobis_sq'][q]:.4g}") for q in quantiles)))
    dropped = f" ({summary.dropped:,} non-finite rows left out)" if summary.dropped else ""
    threshold = summary.threshold
    cut = (f"d² above {threshold:.4g}" if threshold != float("inf") else "no row (the fpr is below what the held-out "
           "rows can calibrate)")
    flagged = Cell(f"{summary.rows:,} rows scored{dropped}; flagged out of distribution: {summary.flagged:,} "
                   f"({summary.share_flagged:.2%}) at fpr {summary.fpr:g}, by {summary.flagged_by}: {cut}")
    scores = Section("scores", "Scores", "per-row quantiles" + (f" · per-row scores in {out}" if out else ""),
                     ("per row", *(f"{int(q[1:])}%" for q in quantiles)), rows, summary=flagged,
                     notes=(f"rows like the reference are flagged at rate at most {summary.fpr:g}",
                            _gaussian_line(summary.fitted)))
    prepared = "L2-normalised rows" if summary.fitted.normalized else "rows as given"
    model = Section("model", "The Gaussian model", f"fitted to {summary.fitted.source}", ("Measure", "Value"), (
        (Cell("rows fitted"), Cell(f"{m.n:,} ({prepared})")),
        (Cell("dimension / rank"), Cell(f"{m.dim} / {m.rank}")),
        (Cell("log det Σ"), Cell(f"{m.log_det:.4g}")),
        (Cell("held-out rows for the OOD flag"), Cell(f"{m.calibration.shape[0]:,}")),
    ), notes=summary.fitted.notes)
    return [scores, model]


def render_html_scores(summary: ScoreSummary, out: str | None = None, images=None, scored: str | None = None) -> str:
    """``gaussaudit score --html``: one self-contained page, the score summary then the
    figure of the squared Mahalanobis norms (drawn here when ``images`` is None; needs
    matplotlib). ``scored`` names the scored embeddings in the title."""
    from gaussaudit.report.html import render_page

    if images is None:
        from gaussaudit.report.figures import score_figures

        images = score_figures(summary)
    what = f"{scored} under the model of" if scored else "model of"
    return render_page(f"gaussaudit score · {what} {summary.fitted.source}",
                       "Embeddings scored under a fitted Gaussian model N(μ, Σ): log-likelihood, squared Mahalanobis "
                       "norm, and an out-of-distribution flag calibrated on held-out reference rows.",
                       score_sections(summary, out), images, label=summary.fitted.source)
