"""Command line: a thin layer that parses options, calls the library, renders
the report and maps errors to exit status 2 (no traceback)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from gaussaudit import __version__
from gaussaudit.audit import AuditConfig, audit
from gaussaudit.errors import GaussAuditError

EXIT_OK, EXIT_NOT_GAUSSIAN, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="gaussaudit",
    help="Audit whether embeddings are Gaussian (InfoNCE Induces Gaussian Distribution, ICLR 2026).",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gaussaudit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Exit status: 0 report produced · 1 with --check, verdict not Gaussian · 2 usage or input error."""


def _fail(message: str) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/bold red] {escape(message)}")
    raise typer.Exit(EXIT_USAGE)


@app.command()
def scan(
    paths: List[str] = typer.Argument(..., metavar="PATH", help="Files (.npy, .npz, .parquet), folders of shards or globs; several = one dataset.", show_default=False),
    sample: int = typer.Option(10_000, "--sample", "-n", help="Rows drawn uniformly (without replacement) for the tests; 0 = every row."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample: same input and options, same numbers."),
    normalize: bool = typer.Option(True, "--normalize/--no-normalize", help="L2-normalise rows before testing (norm CV always uses raw rows)."),
    key: Optional[str] = typer.Option(None, "--key", help="Array to read from .npz files (default: the only one, or embeddings/embedding/emb/features)."),
    column: Optional[str] = typer.Option(None, "--column", help="Parquet list column holding embeddings (default: auto-detected; else every numeric column is a feature)."),
    drop_nonfinite: bool = typer.Option(False, "--drop-nonfinite", help="Leave out rows with NaN/inf/missing values (counted in the report) instead of failing."),
    json_path: Optional[str] = typer.Option(None, "--json", help="Write the JSON report (schema gaussaudit.report/1) to PATH; '-' = stdout only.", metavar="PATH"),
    per_feature: bool = typer.Option(False, "--per-feature", help="Include per-feature statistics and p-values in the JSON report."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --json file."),
    check: bool = typer.Option(False, "--check", help="Exit 1 when the verdict is not Gaussian (for CI gates)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print no terminal report."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Threads for the tests (default: every core)."),
    projections: int = typer.Option(128, "--projections", help="Random directions (uniform on the sphere, seeded) whose projections are tested; 0 = none."),
    pca_projections: int = typer.Option(16, "--pca-projections", help="Top principal directions whose projections are tested; 0 = none."),
    whiten: Optional[str] = typer.Option(None, "--whiten", help="Run the per-feature tests on whitened coordinates: pca or zca.", metavar="pca|zca"),
    mahalanobis: bool = typer.Option(True, "--mahalanobis/--no-mahalanobis", help="Test squared Mahalanobis norms against χ²(rank)."),
    mv_sample: int = typer.Option(2000, "--mv-sample", help="Rows for the multivariate tests (Mardia, Henze-Zirkler, energy); 0 = skip them."),
    mv_dims: int = typer.Option(16, "--mv-dims", help="Multivariate tests on at most this many top principal components."),
    energy_replicates: int = typer.Option(99, "--energy-replicates", help="Bootstrap replicates for the energy test's p-value."),
    calibrate: int = typer.Option(0, "--calibrate", help="R Gaussian surrogates (same mean, covariance, n, d): null band per metric and a calibrated verdict; 0 = off.", metavar="R"),
) -> None:
    """Run the paper's Gaussianity audit on embeddings and print a paper-style table.

    \b
    Examples:
      gaussaudit scan embeddings.npy
      gaussaudit scan shards/ --sample 0 --json report.json
      gaussaudit scan 'emb/part-*.parquet' --column embedding --check
    """
    try:
        if json_path is not None and json_path != "-":
            from gaussaudit.io.writers import check_writable
            from gaussaudit.io.sources import resolve_paths

            inputs = {os.path.realpath(p) for p in resolve_paths(paths)}
            if os.path.realpath(json_path) in inputs:
                raise GaussAuditError(f"{json_path}: is one of the inputs; choose another --json path.")
            check_writable(json_path, overwrite)
        config = AuditConfig(normalize=normalize, sample=sample, seed=seed, key=key, column=column,
                             drop_nonfinite=drop_nonfinite, threads=threads, projections=projections,
                             pca_projections=pca_projections, whiten=whiten, mahalanobis=mahalanobis,
                             mv_sample=mv_sample, mv_dims=mv_dims, energy_replicates=energy_replicates,
                             calibrate=calibrate)
        report = audit(paths, config)
        if json_path is not None:
            from gaussaudit.report.json import render_json

            text = render_json(report, per_feature=per_feature)
            if json_path == "-":
                sys.stdout.write(text)
            else:
                from gaussaudit.io.writers import write_text_atomic

                write_text_atomic(json_path, text, overwrite=overwrite)
        if not quiet and json_path != "-":
            from gaussaudit.report.terminal import render_terminal

            render_terminal(report, Console(highlight=False))
    except GaussAuditError as exc:
        _fail(str(exc))
    except MemoryError:
        _fail("ran out of memory; lower --sample (the tests hold sample × dim float64 values).")
    if check and not report.verdict.gaussian:
        raise typer.Exit(EXIT_NOT_GAUSSIAN)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
