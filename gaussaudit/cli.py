"""Command line: a thin layer that parses options, calls the library, renders
the report and maps errors to exit status 2 (no traceback)."""
from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape

from gaussaudit import __version__
from gaussaudit.audit import AuditConfig, audit
from gaussaudit.errors import GaussAuditError, cli_spelling
from gaussaudit.io.sources import SUPPORTED_SUFFIXES

EXIT_OK, EXIT_NOT_GAUSSIAN, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="gaussaudit",
    help="Audit whether embeddings are Gaussian (InfoNCE Induces Gaussian Distribution, ICLR 2026).",
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's plain help: it wraps to any width (rich's boxes truncate option
    # help at 80 columns) and writes a flag without a fake "<bool>" value
    rich_markup_mode=None,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gaussaudit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Exit status: 0 report produced · 1 with --check, verdict not Gaussian · 2 usage or input error."""
    # the library's errors name options as this command's flags (--sample, not sample)
    ctx.with_resource(cli_spelling())


def _fail(message: str) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/bold red] {escape(message)}")
    raise typer.Exit(EXIT_USAGE)


def _warn(message: str) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold yellow]warning:[/bold yellow] {escape(message)}")


# ----------------------------------------------------------------------------
# options shared by scan, compare and track, declared once


@dataclass(frozen=True)
class Outputs:
    """Where a command's results go, besides the terminal."""

    json_path: str | None = None
    per_feature: bool = False
    overwrite: bool = False
    check: str | None = None
    quiet: bool = False
    markdown: str | None = None
    html: str | None = None
    plots: str | None = None


@dataclass(frozen=True)
class Execution:
    """Where the reading pass runs: here, or on a Dask cluster (gaussaudit.cluster)."""

    scheduler: str | None = None
    workers: int | None = None


# (parameter, type, option, where it goes): AuditConfig fields build the config,
# Outputs fields the outputs. The order is the order --help lists them in.
#: Defaults come from AuditConfig: the library and the CLI cannot drift apart.
_DEFAULT = AuditConfig()
#: What scan and compare read, from the reader registry (io.readers.READERS).
_SUFFIXES = ", ".join(SUPPORTED_SUFFIXES)
_SCAN_OPTIONS = [
    ("sample", int, typer.Option(_DEFAULT.sample, "--sample", "-n", help="Rows drawn uniformly (without replacement) for the tests; 0 = every row."), "config"),
    ("seed", int, typer.Option(_DEFAULT.seed, "--seed", help="Seed of the sample: same input and options, same numbers."), "config"),
    ("normalize", bool, typer.Option(_DEFAULT.normalize, "--normalize/--no-normalize", help="L2-normalise rows before testing (norm CV always uses raw rows)."), "config"),
    ("key", Optional[str], typer.Option(_DEFAULT.key, "--key", help="Array to read from .npz files (default: the only one, or embeddings/embedding/emb/features)."), "config"),
    ("column", Optional[str], typer.Option(_DEFAULT.column, "--column", help="Parquet list column holding embeddings (default: auto-detected; else every float column is a feature)."), "config"),
    ("columns", Optional[str], typer.Option(_DEFAULT.columns, "--columns", metavar="A,B,...", help="Wide parquet: exactly these columns are the features (integer columns too)."), "config"),
    ("exclude", Optional[str], typer.Option(None, "--exclude", metavar="A,B,...", help="Wide parquet: leave these columns out of the features (default features: every float column)."), "config"),
    ("only", Optional[str], typer.Option(_DEFAULT.only, "--only", metavar="image|text", help="A clip-retrieval output folder: audit only its image (img_emb/) or text (text_emb/) embeddings; without it both are audited, side by side."), "config"),
    ("split", Optional[str], typer.Option(_DEFAULT.split, "--split", metavar="NAME", help="A Hugging Face parquet export: audit only this split (default: every split, as one dataset)."), "config"),
    ("drop_nonfinite", bool, typer.Option(_DEFAULT.drop_nonfinite, "--drop-nonfinite", help="Leave out rows with NaN/inf/missing values (counted in the report) instead of failing."), "config"),
    ("json_path", Optional[str], typer.Option(None, "--json", help="Write the JSON report to PATH; '-' = stdout only.", metavar="PATH"), "outputs"),
    ("per_feature", bool, typer.Option(False, "--per-feature", help="Include per-feature statistics and p-values in the JSON report."), "outputs"),
    ("overwrite", bool, typer.Option(False, "--overwrite", help="Replace existing output files (--json, --markdown, --html, --plots, --plot)."), "outputs"),
    ("check", Optional[str], typer.Option(None, "--check", metavar="[test|paper]", help="Exit 1 when the data are not Gaussian: by the headline test of this scan's question (--check, --check test) or by the paper's rule (--check paper)."), "outputs"),
    ("quiet", bool, typer.Option(False, "--quiet", "-q", help="Print no terminal report and no progress bar."), "outputs"),
    ("threads", Optional[int], typer.Option(_DEFAULT.threads, "--threads", help="Threads for the tests, BLAS included (default: every core)."), "config"),
    ("projections", int, typer.Option(_DEFAULT.projections, "--projections", help="Random directions (uniform on the sphere, seeded) whose projections are tested; 0 = none."), "config"),
    ("pca_projections", int, typer.Option(_DEFAULT.pca_projections, "--pca-projections", help="Top principal directions whose projections are tested; 0 = none."), "config"),
    ("whiten", Optional[str], typer.Option(_DEFAULT.whiten, "--whiten", help="Run the per-feature tests on whitened coordinates: pca or zca.", metavar="pca|zca"), "config"),
    ("mahalanobis", bool, typer.Option(_DEFAULT.mahalanobis, "--mahalanobis/--no-mahalanobis", help="Test squared Mahalanobis norms of the raw rows against their exact Beta law (Monte Carlo p-value, on the multivariate subsample)."), "config"),
    ("mv_sample", int, typer.Option(_DEFAULT.mv_sample, "--mv-sample", help="Rows for the joint tests of the raw rows (Mardia, Henze-Zirkler, energy, Mahalanobis); 0 = skip them."), "config"),
    ("mv_dims", int, typer.Option(_DEFAULT.mv_dims, "--mv-dims", help="Multivariate tests on at most this many top principal components."), "config"),
    ("energy_replicates", int, typer.Option(_DEFAULT.energy_replicates, "--energy-replicates", help="Monte Carlo replicates for the energy and Mahalanobis p-values (smallest p-value 1/(R+1); (R+1)·alpha a whole number)."), "config"),
    ("device", str, typer.Option(_DEFAULT.device, "--device", help="Where the per-feature and projection tests run: cpu, cuda, cuda:N (torch, the extract extra) or auto (a GPU when torch sees one).", metavar="cpu|cuda|auto"), "config"),
    ("calibrate", int, typer.Option(_DEFAULT.calibrate, "--calibrate", help="R Gaussian surrogates (the raw rows' mean and covariance, prepared as the data were) for the headline tests and the null bands; R+1 a multiple of 20 (19, 39, 99, ...); 0 = no headline tests.", metavar="R"), "config"),
    ("test_sample", int, typer.Option(_DEFAULT.test_sample, "--test-sample", help="Rows (seeded subsample of the tested rows) for the headline tests and null bands; 0 = every tested row."), "config"),
    ("alpha", float, typer.Option(_DEFAULT.alpha, "--alpha", help="Level of the headline tests."), "config"),
]
_CLUSTER_OPTIONS = [
    ("scheduler", Optional[str], typer.Option(None, "--scheduler", metavar="local|tcp://HOST:PORT", help="Read the shards on a Dask cluster (the dask extra): 'local' starts one here, an address joins a running one. Results are identical to a scan without it."), "execution"),
    ("workers", Optional[int], typer.Option(None, "--workers", help="Worker processes of --scheduler local (default: one per core)."), "execution"),
]
_RENDER_OPTIONS = [
    ("markdown", Optional[str], typer.Option(None, "--markdown", help="Write the table as GitHub-flavoured markdown to FILE; '-' = stdout only.", metavar="FILE"), "outputs"),
    ("html", Optional[str], typer.Option(None, "--html", help="Write one self-contained HTML report (table, verdict, figures inline) to FILE. Needs the plot extra.", metavar="FILE"), "outputs"),
    ("plots", Optional[str], typer.Option(None, "--plots", help="Write the HTML report's figures as PNG files into DIR (created if missing). Needs the plot extra.", metavar="DIR"), "outputs"),
]


#: Parameters that name an output file, and their flags (what --overwrite replaces).
_OUTPUT_FLAGS = {"json_path": "--json", "markdown": "--markdown", "html": "--html", "plots": "--plots",
                 "plot": "--plot"}


def _for_command(name: str, option, present: set[str]):
    """A shared option as one command shows it: --overwrite names only the
    output options that command has."""
    if name != "overwrite":
        return option
    flags = [flag for key, flag in _OUTPUT_FLAGS.items() if key in present]
    option = copy.copy(option)
    option.help = f"Replace existing output files ({', '.join(flags)})."
    return option


def _with_options(*groups):
    """Decorator: add option ``groups`` to a command's parameters.

    The command declares only its own parameters plus ``config`` and
    ``outputs``; typer sees its arguments, then its own options, then the shared
    ones (typer reads ``__signature__``), and the command receives the shared
    values as an ``AuditConfig`` and an ``Outputs``.
    """
    shared = [spec for group in groups for spec in group]

    def decorate(command):
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values()
               if p.name not in ("config", "outputs", "execution")]
        arguments = [p for p in own if isinstance(p.default, typer.models.ArgumentInfo)]
        options = [p for p in own if p not in arguments]
        present = {p.name for p in own} | {name for name, *_ in shared}
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=_for_command(name, option, present),
                                   annotation=kind)
                 for name, kind, option, _ in shared]

        @functools.wraps(command)
        def wrapper(**values):
            config = AuditConfig(**{name: values.pop(name) for name, _, _, to in shared if to == "config"})
            outputs = Outputs(**{name: values.pop(name) for name, _, _, to in shared if to == "outputs"})
            execution = {name: values.pop(name) for name, _, _, to in shared if to == "execution"}
            if any(to == "execution" for *_, to in shared):
                values["execution"] = Execution(**execution)
            return command(config=config, outputs=outputs, **values)

        wrapper.__signature__ = inspect.Signature(
            [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in arguments + options] + added
        )
        return wrapper

    return decorate


# ----------------------------------------------------------------------------
# outputs: checked before the (possibly long) audit, written after it


def _input_files(sources) -> set[str]:
    """Real paths of every file the inputs name, each input resolved on its own
    (compare may name a folder and a file inside it as two columns)."""
    from gaussaudit.io.remote import is_url
    from gaussaudit.io.sources import resolve_paths

    return {str(f) if is_url(f) else os.path.realpath(f) for src in sources for f in resolve_paths([src])}


def _check_outputs(input_files: set[str], outputs: Outputs, figure_names=(), plot: str | None = None) -> None:
    """Fail fast on anything that would make writing fail after the audit."""
    from gaussaudit.io.writers import check_folder_targets, check_writable

    to_stdout = [opt for opt, path in (("--json", outputs.json_path), ("--markdown", outputs.markdown)) if path == "-"]
    if len(to_stdout) > 1:
        raise GaussAuditError(f"{' and '.join(to_stdout)} both ask for stdout ('-'); send one of them to a file.")
    for option, wanted in (("--html", outputs.html), ("--plots", outputs.plots), ("--plot", plot)):
        if wanted is not None:
            from gaussaudit.report.figures import require_matplotlib

            require_matplotlib(option)
    files = {opt: path for opt, path in (("--json", outputs.json_path), ("--markdown", outputs.markdown),
                                         ("--html", outputs.html), ("--plot", plot)) if path not in (None, "-")}
    seen: dict[str, str] = {}
    for option, path in files.items():
        real = os.path.realpath(path)
        if real in input_files:
            raise GaussAuditError(f"{path}: is one of the inputs; choose another {option} path.")
        if real in seen and not (os.path.exists(real) and not os.path.isfile(real)):  # /dev/null twice is fine
            raise GaussAuditError(f"{path}: is named by both {seen[real]} and {option}; give each output its own file.")
        seen[real] = option
        check_writable(path, outputs.overwrite)
    if outputs.plots is not None:
        check_folder_targets(outputs.plots, figure_names, outputs.overwrite)


def _write_text(path: str, text: str, overwrite: bool) -> None:
    if path == "-":
        sys.stdout.write(text)
    else:
        from gaussaudit.io.writers import write_text_atomic

        write_text_atomic(path, text, overwrite=overwrite)


def _write_reports(document: dict, columns, outputs: Outputs, prefixes=None, title: str | None = None) -> None:
    """JSON, markdown, HTML and PNG outputs of one or more (label, report) columns."""
    if outputs.json_path is not None:
        import json

        _write_text(outputs.json_path, json.dumps(document, indent=2, ensure_ascii=False) + "\n", outputs.overwrite)
    if outputs.markdown is not None:
        from gaussaudit.report.markdown import render_markdown

        _write_text(outputs.markdown, render_markdown(columns, title=title), outputs.overwrite)
    if outputs.html is None and outputs.plots is None:
        return
    from gaussaudit.report.figures import figure_file_name, report_figures

    # Drawn once, for both the HTML page and the PNG files.
    null_cache: dict = {}
    images = [report_figures(report, null_cache) for _, report in columns]
    if outputs.html is not None:
        from gaussaudit.io.writers import write_text_atomic
        from gaussaudit.report.html import render_html

        write_text_atomic(outputs.html, render_html(columns, images=images, **({"title": title} if title else {})),
                          overwrite=outputs.overwrite)
    if outputs.plots is not None:
        from gaussaudit.io.writers import write_files_atomic

        files = {figure_file_name(image.name, prefix): image.png
                 for column_images, prefix in zip(images, prefixes or [None] * len(columns))
                 for image in column_images}
        write_files_atomic(outputs.plots, files, overwrite=outputs.overwrite)


def _write_page(outputs: Outputs, images, render) -> None:
    """--html and --plots of pairs and score: ``images`` (FigureImage list) drawn once,
    for both the page ``render(images)`` and the PNG files."""
    if outputs.html is not None:
        from gaussaudit.io.writers import write_text_atomic

        write_text_atomic(outputs.html, render(images), overwrite=outputs.overwrite)
    if outputs.plots is not None:
        from gaussaudit.io.writers import write_files_atomic
        from gaussaudit.report.figures import figure_file_name

        write_files_atomic(outputs.plots, {figure_file_name(image.name): image.png for image in images},
                           overwrite=outputs.overwrite)


CHECK_MODES = ("test", "paper")


def _check_mode(outputs: Outputs, config: AuditConfig) -> None:
    """Fail before the audit on a --check that cannot be judged."""
    if outputs.check is None:
        return
    if outputs.check not in CHECK_MODES:
        raise GaussAuditError(f"--check must be 'test' (the headline test, the default) or 'paper' (the paper's "
                              f"rule); got {outputs.check!r}.")
    if outputs.check == "test" and not config.calibrate:
        raise GaussAuditError("--check gates on the headline test, which --calibrate 0 turns off; "
                              "use --check paper or a --calibrate R (19, 39, ...).")


def _warn_if_nothing_comes_out(outputs: Outputs, plot: str | None = None) -> None:
    """-q with no output file and no --check: the run would print, write and
    gate nothing; say so before the work rather than after."""
    if outputs.quiet and outputs.check is None and not any(
            (outputs.json_path, outputs.markdown, outputs.html, outputs.plots, plot)):
        _warn("-q with no output option: nothing will be printed or written. Add --json FILE, --markdown FILE or "
              "--html FILE, or --check for an exit status.")


def _passes(report, check: str | None) -> bool:
    """Whether ``report`` passes the gate ``check`` asks for (True when there is none)."""
    if check is None:
        return True
    if check == "paper":
        return report.verdict.gaussian
    return report.test.gaussian


def _terminal_wanted(outputs: Outputs) -> bool:
    return not outputs.quiet and "-" not in (outputs.json_path, outputs.markdown)


@contextlib.contextmanager
def _cluster(execution: Execution | None, outputs: Outputs):
    """The Dask client --scheduler asks for (None without it); the dashboard
    link goes to stderr unless --quiet."""
    if execution is None or execution.scheduler is None:
        if execution is not None and execution.workers is not None:
            raise GaussAuditError("--workers sizes the cluster --scheduler local starts; give --scheduler local too.")
        yield None
        return
    from gaussaudit.cluster import connect

    say = None if outputs.quiet else (lambda line: Console(stderr=True, highlight=False).print(escape(line)))
    with connect(execution.scheduler, execution.workers, say=say) as client:
        yield client


@contextlib.contextmanager
def _progress(outputs: Outputs):
    """A progress bar on stderr while the audit runs, when stderr is a terminal
    and --quiet was not given; else a receiver that draws nothing."""
    from gaussaudit.progress import SilentProgress

    console = Console(stderr=True)
    if outputs.quiet or not console.is_interactive:
        yield SilentProgress()
        return
    from gaussaudit.report.progress import TerminalProgress

    with TerminalProgress(console) as bar:
        yield bar


def _run(body, inputs: list[str] | None = None) -> int:
    """Run a command body, mapping errors to exit status 2 with a message
    (naming ``inputs``, the paths as typed, where the error itself cannot)."""
    where = "" if not inputs else ", ".join(inputs[:3]) + (" …" if len(inputs) > 3 else "") + ": "
    try:
        return body()
    except GaussAuditError as exc:
        _fail(str(exc))
    except MemoryError:
        _fail(f"{where}ran out of memory; lower --sample (the tests hold sample × dim values in memory) or "
              "--mv-sample.")
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM: outputs come at the end, each atomically
        Console(stderr=True, highlight=False).print("interrupted: no output is half-written")
        raise typer.Exit(130)
    except RuntimeError as exc:
        if "can't start new thread" not in str(exc):
            raise
        _fail(f"{where}could not start a worker thread (a process or memory limit); lower --threads (1 runs "
              "without workers) or --sample.")
    except np.linalg.LinAlgError as exc:
        # A last line of defence: the inputs are checked and rescaled before any linear algebra.
        _fail(f"{where}a linear-algebra step failed on these data ({exc}); they may be degenerate (rank far below "
              "the dimension, or values at the edge of float64); a smaller --mv-dims or --pca-projections avoids the "
              "largest decompositions.")


# ----------------------------------------------------------------------------
# commands


@app.command()
@_with_options(_SCAN_OPTIONS, _CLUSTER_OPTIONS, _RENDER_OPTIONS)
def scan(
    paths: List[str] = typer.Argument(..., metavar="PATH", help=f"Files ({_SUFFIXES}), folders of shards or globs, local or remote (s3://, gs://, https://); several = one dataset.", show_default=False),
    *,
    config: AuditConfig,
    outputs: Outputs,
    execution: Execution,
) -> None:
    """Run the paper's Gaussianity audit on embeddings and print a paper-style table.

    \b
    Examples:
      gaussaudit scan embeddings.npy
      gaussaudit scan shards/ --sample 0 --json report.json
      gaussaudit scan 'emb/part-*.parquet' --column embedding --check
      gaussaudit scan emb.npy --html report.html --markdown -
      gaussaudit scan clip_retrieval_out/      # img_emb/ and text_emb/ side by side
      gaussaudit scan s3://bucket/emb/ --scheduler local --workers 8
    """

    from gaussaudit.io.layouts import embedding_sets

    sets = embedding_sets(paths, config.only)
    if sets:  # a clip-retrieval folder with image and text embeddings: two datasets, side by side
        title = f"gaussaudit scan · {paths[0]} (clip-retrieval output: {', '.join(name for name, _ in sets)})"
        gaussian = _run(lambda: _compare_body([str(p) for _, p in sets], [name for name, _ in sets], config,
                                              outputs, title, execution), paths)
        if outputs.check and not gaussian:
            raise typer.Exit(EXIT_NOT_GAUSSIAN)
        return

    def body():
        from gaussaudit.report.figures import figure_file_names

        wanted = (outputs.json_path, outputs.markdown, outputs.html)
        inputs = _input_files(paths) if any(p not in (None, "-") for p in wanted) else set()
        _check_mode(outputs, config)
        _check_outputs(inputs, outputs, figure_file_names())
        _warn_if_nothing_comes_out(outputs)
        with _cluster(execution, outputs) as client, _progress(outputs) as progress:
            report = audit(paths, config, progress=progress, client=client)
        label = ", ".join(paths)  # the input as typed: a folder or glob stays one name
        _write_reports(report.to_dict(per_feature=outputs.per_feature), [(label, report)], outputs)
        if _terminal_wanted(outputs):
            from gaussaudit.report.terminal import render_terminal

            render_terminal(report, Console(highlight=False))
        return _passes(report, outputs.check)

    gaussian = _run(body, paths)
    if outputs.check and not gaussian:
        raise typer.Exit(EXIT_NOT_GAUSSIAN)


@app.command()
@_with_options(_SCAN_OPTIONS, _CLUSTER_OPTIONS, _RENDER_OPTIONS)
def compare(
    paths: List[str] = typer.Argument(..., metavar="FILE", help=f"One input per column: a file ({_SUFFIXES}), a folder of shards or a glob.", show_default=False),
    labels: Optional[List[str]] = typer.Option(None, "--label", metavar="NAME", help="Column name, once per input in order (default: the file names)."),
    *,
    config: AuditConfig,
    outputs: Outputs,
    execution: Execution,
) -> None:
    """Audit several inputs with the same options: the paper's table, one column each.

    \b
    Examples:
      gaussaudit compare supervised.npy simclr.npy --label supervised --label contrastive
      gaussaudit compare a.npy b.parquet --markdown - >> "$GITHUB_STEP_SUMMARY"
      gaussaudit compare a.npy b.npy --json cmp.json --html cmp.html --check
    """

    def body():
        from gaussaudit.compare import check_labels, expand_embedding_sets

        sources, names = expand_embedding_sets(paths, labels, config.only)
        return _compare_body(sources, check_labels(sources, names), config, outputs, execution=execution)

    gaussian = _run(body, paths)
    if outputs.check and not gaussian:
        raise typer.Exit(EXIT_NOT_GAUSSIAN)


def _compare_body(paths: list[str], names: list[str], config: AuditConfig, outputs: Outputs,
                  title: str | None = None, execution: Execution | None = None) -> bool:
    """compare's work, also scan's on a folder of several embedding sets (then
    ``title`` heads each view): the audits, the outputs, the terminal table;
    whether every input passes."""
    from gaussaudit.compare import compare as compare_inputs
    from gaussaudit.report.figures import figure_file_names

    prefixes = _file_prefixes(names)
    wanted = (outputs.json_path, outputs.markdown, outputs.html)
    inputs = _input_files(paths) if any(p not in (None, "-") for p in wanted) else set()
    _check_mode(outputs, config)
    _check_outputs(inputs, outputs, [n for prefix in prefixes for n in figure_file_names(prefix)])
    _warn_if_nothing_comes_out(outputs)
    with _cluster(execution, outputs) as client, _progress(outputs) as progress:
        result = compare_inputs(paths, names, config, progress=progress, client=client)
    columns = [(c.label, c.report) for c in result.columns]
    _write_reports(result.to_dict(per_feature=outputs.per_feature), columns, outputs, prefixes, title)
    if _terminal_wanted(outputs):
        from gaussaudit.report.terminal import render_terminal_compare

        render_terminal_compare(result, Console(highlight=False), title)
    return all(_passes(r, outputs.check) for r in result.reports)


@app.command()
@_with_options(_SCAN_OPTIONS, _CLUSTER_OPTIONS)
def track(
    paths: List[str] = typer.Argument(..., metavar="PATH", help="Files whose names carry the step (emb_epoch50.npy, step_1200.parquet), folders of them, or globs.", show_default=False),
    plot: Optional[str] = typer.Option(None, "--plot", metavar="FILE.png", help="Draw AD avg, DP avg, CV and the pass fractions against step, thresholds as lines (with --pairs: alignment and uniformity). Needs the plot extra."),
    pairs: Optional[Tuple[str, str]] = typer.Option(None, "--pairs", metavar="A B", help="Each step is a folder holding two files, A and B, whose row i pair (two views, or image and caption): measure alignment, uniformity, ‖m̂‖², the η² bound and the modality gap at each step (as gaussaudit pairs) instead of the Gaussianity audit."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="With --pairs: τ of the uniformity E log E exp(u·v/τ) (default 0.1)."),
    uniformity_sample: Optional[int] = typer.Option(None, "--uniformity-sample", help="With --pairs: pairs of the O(n²) uniformity sums (default 5000)."),
    *,
    config: AuditConfig,
    outputs: Outputs,
    execution: Execution,
) -> None:
    """Audit embeddings saved along training, ordered by the number in their names.

    A step that fails to load is reported and skipped. With --check, exit 1 when
    the last step is not Gaussian. With --pairs A B, each step folder's paired
    files are measured as gaussaudit pairs does (alignment, uniformity...).

    \b
    Examples:
      gaussaudit track checkpoints/ --plot gaussianity.png
      gaussaudit track 'emb_epoch*.npy' --json track.json
      gaussaudit track run/ --pairs view1.npy view2.npy --plot alignment.png
    """
    if pairs is not None:
        _run(lambda: _track_pairs_body(paths, pairs, temperature, uniformity_sample, plot, config, outputs, execution),
             paths)
        return
    for flag, value in (("--temperature", temperature), ("--uniformity-sample", uniformity_sample)):
        if value is not None:
            _fail(f"{flag} sets the uniformity of track --pairs A B; give --pairs too, or leave {flag} out.")

    def body():
        from gaussaudit.compare import find_steps
        from gaussaudit.compare import track as track_steps

        # Step files, and files inside step folders, unvalidated: a broken step
        # is skipped later, not an error here.
        inputs = set()
        for _, step_path in find_steps(paths):
            if "://" in step_path:
                continue  # a remote step can never be an output file here
            p = Path(step_path)
            inputs.update(os.path.realpath(f) for f in ([p] if not p.is_dir() else p.rglob("*")))
        _check_mode(outputs, config)
        _check_outputs(inputs, outputs, plot=plot)
        _warn_if_nothing_comes_out(outputs, plot)
        with _cluster(execution, outputs) as client, _progress(outputs) as progress:
            result = track_steps(paths, config, progress=progress, client=client)
        for s in result.skipped:
            _warn(f"step {s.step} skipped: {s.error}")
        _write_reports(result.to_dict(per_feature=outputs.per_feature), [], outputs)
        if plot is not None:
            from gaussaudit.io.writers import write_bytes_atomic
            from gaussaudit.report.figures import track_png

            write_bytes_atomic(plot, track_png(result), overwrite=outputs.overwrite)
        if _terminal_wanted(outputs):
            from gaussaudit.report.terminal import render_terminal_track

            render_terminal_track(result, Console(highlight=False))
        return _passes(result.points[-1].report, outputs.check)

    gaussian = _run(body, paths)
    if outputs.check and not gaussian:
        raise typer.Exit(EXIT_NOT_GAUSSIAN)


#: The scan options track --pairs uses (how files are read, the pair sample, threads); every
#: other one belongs to the Gaussianity audit and is refused with --pairs.
_TRACK_PAIRS_CONFIG = ("sample", "seed", "key", "column", "columns", "exclude", "only", "split", "threads")


def _track_pairs_body(paths: list[str], pairs: tuple[str, str], temperature: float | None,
                      uniformity_sample: int | None, plot: str | None, config: AuditConfig, outputs: Outputs,
                      execution: Execution) -> None:
    """track --pairs A B: gaussaudit pairs at each step, one row per step."""
    from gaussaudit.compare import check_pair_names, find_pair_steps, track_pairs
    from gaussaudit.pairs import audit_pairs

    a, b = check_pair_names(pairs)
    if outputs.check is not None:
        raise GaussAuditError("--check gates on a Gaussianity verdict, and track --pairs measures alignment and "
                              "uniformity, which have no pass mark; leave --check out, or run track without --pairs.")
    specs = [(name, option) for name, _, option, to in _SCAN_OPTIONS if to == "config"]
    plain = AuditConfig(**{name: option.default for name, option in specs})
    refused = [option.param_decls[0] for name, option in specs
               if name not in _TRACK_PAIRS_CONFIG and getattr(config, name) != getattr(plain, name)]
    refused += [flag for flag, given in (("--per-feature", outputs.per_feature),
                                         ("--scheduler", execution.scheduler is not None),
                                         ("--workers", execution.workers is not None)) if given]
    if refused:
        raise GaussAuditError(f"{', '.join(refused)} {'sets' if len(refused) == 1 else 'set'} the Gaussianity audit, "
                              "which track --pairs does not run (it measures alignment and uniformity, as gaussaudit "
                              f"pairs); leave {'it' if len(refused) == 1 else 'them'} out, or drop --pairs.")
    defaults = inspect.signature(audit_pairs).parameters
    temperature = defaults["temperature"].default if temperature is None else temperature
    uniformity_sample = defaults["uniformity_sample"].default if uniformity_sample is None else uniformity_sample
    inputs = set()
    for _, step_path in find_pair_steps(paths, a, b):
        if "://" not in step_path:
            p = Path(step_path)
            inputs.update(os.path.realpath(f) for f in ([p] if not p.is_dir() else p.rglob("*")))
    _check_outputs(inputs, outputs, plot=plot)
    _warn_if_nothing_comes_out(outputs, plot)
    read = {name: getattr(config, name) for name in _TRACK_PAIRS_CONFIG[2:] if getattr(config, name) != getattr(plain, name)}
    result = track_pairs(paths, (a, b), temperature=temperature, sample=config.sample,
                         uniformity_sample=uniformity_sample, seed=config.seed, **read)
    for s in result.skipped:
        _warn(f"step {s.step} skipped: {s.error}")
    _write_reports(result.to_dict(), [], outputs)
    if plot is not None:
        from gaussaudit.io.writers import write_bytes_atomic
        from gaussaudit.report.figures import track_pairs_png

        write_bytes_atomic(plot, track_pairs_png(result), overwrite=outputs.overwrite)
    if _terminal_wanted(outputs):
        from gaussaudit.report.terminal import render_terminal_track_pairs

        render_terminal_track_pairs(result, Console(highlight=False))


def _sources(paths: List[str], what: str):
    """A command's input as typed: one JSON report (its path), or embeddings (the list)."""
    from gaussaudit.gate.release import is_report_path

    reports = [p for p in paths if is_report_path(p)]
    if reports and len(paths) > 1:
        raise GaussAuditError(f"{what}: give one JSON report, or embeddings (files, folders, globs); got "
                              f"{', '.join(paths)}.")
    return paths[0] if reports else list(paths)


def _gate_inputs(*sources) -> set[str]:
    """Real paths of every file the gate reads (its outputs must not replace one)."""
    from gaussaudit.gate.release import is_report_path

    found: set[str] = set()
    for source in sources:
        if source is None:
            continue
        if is_report_path(source):
            found.add(os.path.realpath(source))
        else:
            found |= _input_files(source)
    return found


def _ci_outputs(markdown_text: str, annotations: str) -> None:
    """On GitHub Actions: annotations on stdout, the markdown appended to the step summary."""
    if os.environ.get("GITHUB_ACTIONS") != "true":
        return
    sys.stdout.write(annotations)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        from gaussaudit.io.writers import append_text

        append_text(summary, markdown_text)


@app.command()
def gate(
    candidate: List[str] = typer.Argument(..., metavar="CANDIDATE", help="The release to judge: the JSON report of a `gaussaudit scan --json`, or embeddings (files, folders, globs: one dataset).", show_default=False),
    baseline: Optional[List[str]] = typer.Option(None, "--baseline", "-b", metavar="PREVIOUS", help="The previous release: its JSON report or its embeddings (repeat for several files of one dataset). Embeddings are scanned with the baseline report's settings."),
    policy: Optional[str] = typer.Option(None, "--policy", metavar="PATH", help="Policy file (default: gaussaudit.toml, or [tool.gaussaudit] in pyproject.toml, from the working directory upward; none: gate on the headline test)."),
    junit: Optional[str] = typer.Option(None, "--junit", metavar="PATH", help="Write JUnit XML (one testcase per check) for the CI's test-results view."),
    markdown: Optional[str] = typer.Option(None, "--markdown", metavar="FILE", help="Write the checks as markdown (a step summary, a pull-request comment); '-' = stdout only."),
    json_path: Optional[str] = typer.Option(None, "--json", metavar="PATH", help="Write the gate's JSON (checks, both reports); '-' = stdout only."),
    html: Optional[str] = typer.Option(None, "--html", metavar="FILE", help="Write the candidate's scan report as HTML (when CANDIDATE is embeddings). Needs the plot extra."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files (--junit, --markdown, --json, --html)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print no table (the exit status still tells)."),
) -> None:
    """Judge a release: every check of the policy, against the previous release.

    Exit status 0 every check passed · 1 a check failed · 2 usage or input
    error. On GitHub Actions failed checks become annotations and the table is
    added to the step summary.

    \b
    Examples:
      gaussaudit gate new.npy --baseline previous.json
      gaussaudit gate report.json --baseline previous.json --junit gate.xml
      gaussaudit gate emb/ --baseline old_emb/ --policy ci/gaussaudit.toml --markdown -
    """

    def body():
        import json

        from gaussaudit.gate import gate as run_gate
        from gaussaudit.io.writers import check_writable
        from gaussaudit.report.gate import github_annotations, render_junit, render_markdown_gate, render_terminal_gate

        cand = _sources(candidate, "CANDIDATE")
        base = _sources(baseline, "--baseline") if baseline else None
        if html is not None and isinstance(cand, str):
            raise GaussAuditError(f"--html draws the candidate's scan, and {cand} is a JSON report: give the candidate's "
                                  "embeddings, or make the HTML with `gaussaudit scan --html`.")
        outputs = Outputs(json_path=json_path, markdown=markdown, html=html, overwrite=overwrite, quiet=quiet)
        inputs = _gate_inputs(cand, base)
        _check_outputs(inputs, outputs)
        if junit is not None:
            real = os.path.realpath(junit)
            if real in inputs:
                raise GaussAuditError(f"{junit}: is one of the inputs; choose another --junit path.")
            if real in {os.path.realpath(p) for p in (json_path, markdown) if p not in (None, "-")}:
                raise GaussAuditError(f"{junit}: is named by --junit and another output; give each output its own file.")
            check_writable(junit, overwrite)
        with _progress(outputs) as progress:
            result = run_gate(cand, base, policy=policy, progress=progress)
        markdown_text = render_markdown_gate(result)
        if json_path is not None:
            _write_text(json_path, json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n", overwrite)
        if markdown is not None:
            _write_text(markdown, markdown_text, overwrite)
        if junit is not None:
            from gaussaudit.io.writers import write_text_atomic

            write_text_atomic(junit, render_junit(result), overwrite=overwrite)
        if html is not None:
            _write_reports({}, [(result.candidate_label, result.candidate_report)],
                           Outputs(html=html, overwrite=overwrite))
        _ci_outputs(markdown_text, github_annotations(result))
        if _terminal_wanted(outputs):
            render_terminal_gate(result, Console(highlight=False))
        return result.passed

    if not _run(body, list(candidate)):
        raise typer.Exit(EXIT_NOT_GAUSSIAN)


@app.command()
def drift(
    reference: str = typer.Argument(..., metavar="REFERENCE", help="Embeddings the model gave before (a file, folder of shards or glob).", show_default=False),
    current: str = typer.Argument(..., metavar="CURRENT", help="Embeddings of the same model on new data.", show_default=False),
    permutations: int = typer.Option(99, "--permutations", help="Relabellings of the pooled rows for the permutation p-value; (permutations + 1)·alpha must reach 1."),
    alpha: float = typer.Option(0.05, "--alpha", help="Level of the drift test."),
    sample: int = typer.Option(5000, "--sample", "-n", help="Rows of each set the drift test uses (seeded uniform sample); 0 = every row."),
    seed: int = typer.Option(_DEFAULT.seed, "--seed", help="Seed of the samples and the permutations."),
    normalize: bool = typer.Option(False, "--normalize/--no-normalize", help="L2-normalise rows first: compare directions (the default compares the rows as the model gives them, which the Gaussian closed forms are about)."),
    calibrate: int = typer.Option(_DEFAULT.calibrate, "--calibrate", metavar="R", help="Surrogates of each set's headline Gaussianity test, which says whether the Gaussian closed forms describe the sets; 0 = skip it."),
    key: Optional[str] = typer.Option(None, "--key", help="Array to read from .npz files."),
    column: Optional[str] = typer.Option(None, "--column", help="Parquet list column holding embeddings."),
    drop_nonfinite: bool = typer.Option(False, "--drop-nonfinite", help="Leave out rows with NaN/inf/missing values instead of failing."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Threads (default: every core)."),
    json_path: Optional[str] = typer.Option(None, "--json", metavar="PATH", help="Write the drift report as JSON; '-' = stdout only."),
    markdown: Optional[str] = typer.Option(None, "--markdown", metavar="FILE", help="Write it as markdown; '-' = stdout only."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files (--json, --markdown)."),
    check: bool = typer.Option(False, "--check", help="Exit 1 when the current rows have drifted (permutation p ≤ alpha)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print no table."),
) -> None:
    """Has the same model's embedding distribution moved on new data?

    Fréchet (2-Wasserstein) distance, KL and mean shift between the Gaussians
    fitted to a sample of each set; the Fréchet distance judged by a
    permutation test (exact level whatever the distribution), and each set's
    headline Gaussianity test saying whether the closed forms describe the data.

    \b
    Examples:
      gaussaudit drift last_month.parquet today.parquet
      gaussaudit drift ref/ new/ --alpha 0.01 --check --json drift.json
    """

    def body():
        import json

        from gaussaudit.gate import drift as run_drift
        from gaussaudit.report.gate import render_markdown_drift, render_terminal_drift

        outputs = Outputs(json_path=json_path, markdown=markdown, overwrite=overwrite, quiet=quiet)
        _check_outputs(_gate_inputs([reference], [current]), outputs)
        config = AuditConfig(seed=seed, normalize=normalize, calibrate=calibrate, key=key, column=column,
                             drop_nonfinite=drop_nonfinite, threads=threads)
        report = run_drift([reference], [current], config=config, permutations=permutations, alpha=alpha, sample=sample)
        document = report.to_dict()
        document.update(reference=reference, current=current)
        if json_path is not None:
            _write_text(json_path, json.dumps(document, indent=2, ensure_ascii=False) + "\n", overwrite)
        if markdown is not None:
            _write_text(markdown, render_markdown_drift(report), overwrite)
        if _terminal_wanted(outputs):
            render_terminal_drift(report, Console(highlight=False))
        return not report.drifted

    same = _run(body, [reference, current])
    if check and not same:
        raise typer.Exit(EXIT_NOT_GAUSSIAN)


@app.command()
def fit(
    paths: List[str] = typer.Argument(..., metavar="PATH", help="Reference embeddings (files, folders of shards, globs: one dataset).", show_default=False),
    out: str = typer.Option(..., "--out", "-o", metavar="MODEL.npz", help="Where the model goes (mean, eigenbasis, held-out norms, the audit's verdict).", show_default=False),
    normalize: bool = typer.Option(False, "--normalize/--no-normalize", help="Model L2-normalised rows (scores then normalise too); default: the rows as given."),
    holdout: int = typer.Option(10_000, "--holdout", help="Rows held out of the fit (seeded; at most a fifth) to calibrate the OOD flag; 0 = none (the flag then uses the χ² law)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the held-out draw and of the audit's sample."),
    key: Optional[str] = typer.Option(None, "--key", help="Array to read from .npz files."),
    column: Optional[str] = typer.Option(None, "--column", help="Parquet list column holding embeddings."),
    drop_nonfinite: bool = typer.Option(False, "--drop-nonfinite", help="Leave out rows with NaN/inf/missing values instead of failing."),
    no_audit: bool = typer.Option(False, "--no-audit", help="Skip the audit of the fitted rows (the model file then cannot say whether a Gaussian describes them)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing."),
) -> None:
    """Fit the Gaussian model N(μ, Σ) to reference embeddings, for `gaussaudit score`.

    One streaming pass over every row (bounded memory); Σ is kept to its rank,
    and the whitening W = VΛ^(-1/2) of Whitened CLIP is stored with it.

    \b
    Examples:
      gaussaudit fit reference.parquet --out model.npz
      gaussaudit fit shards/ --out model.npz --holdout 20000
    """

    def body():
        from gaussaudit.io.models import save_model
        from gaussaudit.io.writers import check_writable
        from gaussaudit.likelihood import fit as fit_model
        from gaussaudit.likelihood import model_arrays
        from gaussaudit.report.likelihood import render_terminal_fit

        if os.path.realpath(out) in _input_files(paths):
            raise GaussAuditError(f"{out}: is one of the inputs; choose another --out path.")
        check_writable(out, overwrite)
        fitted = fit_model(list(paths), normalize=normalize, holdout=holdout, seed=seed, run_audit=not no_audit,
                           **{k: v for k, v in (("key", key), ("column", column)) if v is not None},
                           drop_nonfinite=drop_nonfinite)
        save_model(out, model_arrays(fitted), overwrite=overwrite)
        if not quiet:
            render_terminal_fit(fitted, out, Console(highlight=False))

    _run(body, list(paths))


@app.command()
def score(
    model: str = typer.Argument(..., metavar="MODEL.npz", help="A model made by `gaussaudit fit`.", show_default=False),
    paths: List[str] = typer.Argument(..., metavar="PATH", help="Embeddings to score (files, folders of shards, globs: one dataset).", show_default=False),
    out: Optional[str] = typer.Option(None, "--out", "-o", metavar="FILE.parquet", help="Per-row scores as parquet: row, log_likelihood, mahalanobis_sq, chi2_p, ood_p, ood (written as the rows stream)."),
    fpr: float = typer.Option(0.01, "--fpr", help="False-positive rate of the OOD flag on rows like the reference ones."),
    key: Optional[str] = typer.Option(None, "--key", help="Array to read from .npz files."),
    column: Optional[str] = typer.Option(None, "--column", help="Parquet list column holding embeddings."),
    drop_nonfinite: bool = typer.Option(False, "--drop-nonfinite", help="Leave out rows with NaN/inf/missing values (not scored, counted) instead of failing."),
    json_path: Optional[str] = typer.Option(None, "--json", metavar="PATH", help="Write the summary as JSON; '-' = stdout only."),
    html: Optional[str] = typer.Option(None, "--html", metavar="FILE", help="Write one self-contained HTML page: the summary and the histogram of squared Mahalanobis norms with the OOD threshold. Needs the plot extra."),
    plots: Optional[str] = typer.Option(None, "--plots", metavar="DIR", help="Write the page's figure as mahalanobis.png into DIR (created if missing). Needs the plot extra."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files (--out, --json, --html, --plots)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print no summary."),
) -> None:
    """Score embeddings under a fitted Gaussian model: log-likelihood, Mahalanobis norm, OOD flag.

    The flag's p-value is the row's rank among held-out reference rows
    (conformal): rows like the reference ones are flagged at rate at most
    --fpr, Gaussian or not.

    \b
    Examples:
      gaussaudit score model.npz today.parquet --out scores.parquet
      gaussaudit score model.npz new/ --fpr 0.001 --json -
      gaussaudit score model.npz today.parquet --html scores.html
    """

    def body():
        import json

        from gaussaudit.io.models import load_model
        from gaussaudit.io.writers import check_writable, write_columns_parquet
        from gaussaudit.likelihood import ScoreSummary, check_fpr, model_from_arrays, score_chunks
        from gaussaudit.report.figures import SCORE_FIGURE_NAMES, figure_file_name
        from gaussaudit.report.likelihood import render_terminal_scores

        inputs = _input_files(paths) | {os.path.realpath(model)}
        if out not in (None, "-"):
            if os.path.realpath(out) in inputs:
                raise GaussAuditError(f"{out}: is one of the inputs; choose another --out path.")
            check_writable(out, overwrite)
        for option, path in (("--json", json_path), ("--html", html)):
            if out is not None and path is not None and os.path.realpath(out) == os.path.realpath(path):
                raise GaussAuditError(f"{out}: is named by both --out and {option}; give each output its own file.")
        outputs = Outputs(json_path=json_path, html=html, plots=plots, overwrite=overwrite, quiet=quiet)
        _check_outputs(inputs, outputs, [figure_file_name(name) for name in SCORE_FIGURE_NAMES])
        fitted = model_from_arrays(load_model(model), model)
        summary = ScoreSummary(fitted, check_fpr(fpr))
        options = {k: v for k, v in (("key", key), ("column", column)) if v is not None}
        parts = (summary.add(p) for p in score_chunks(fitted, list(paths), fpr=fpr, drop_nonfinite=drop_nonfinite,
                                                      **options))
        if out is not None:
            write_columns_parquet(out, (p.columns() for p in parts), overwrite=overwrite)
        else:
            for _ in parts:
                pass
        if not summary.rows:
            raise GaussAuditError(f"{', '.join(paths)}: no rows to score.")
        if json_path is not None:
            _write_text(json_path, json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n", overwrite)
        if html is not None or plots is not None:
            from gaussaudit.report.figures import score_figures
            from gaussaudit.report.likelihood import render_html_scores

            _write_page(outputs, score_figures(summary), lambda images: render_html_scores(summary, out, images, ", ".join(paths)))
        if not quiet and json_path != "-":
            render_terminal_scores(summary, out, Console(highlight=False))

    _run(body, [model, *paths])


@app.command()
def pairs(
    a: str = typer.Argument(..., metavar="A", help="Embeddings (a file, folder of shards or glob); row i pairs with row i of B.", show_default=False),
    b: str = typer.Argument(..., metavar="B", help="The paired embeddings: a second augmented view, or the captions of A's images.", show_default=False),
    temperature: float = typer.Option(0.1, "--temperature", help="τ of the uniformity E log E exp(u·v/τ)."),
    sample: int = typer.Option(10_000, "--sample", "-n", help="Pairs used (seeded uniform draw); 0 = every pair."),
    uniformity_sample: int = typer.Option(5000, "--uniformity-sample", help="Pairs of the O(n²) uniformity sums."),
    seed: int = typer.Option(0, "--seed", help="Seed of the draws."),
    key: Optional[str] = typer.Option(None, "--key", help="Array to read from .npz files."),
    column: Optional[str] = typer.Option(None, "--column", help="Parquet list column holding embeddings."),
    json_path: Optional[str] = typer.Option(None, "--json", metavar="PATH", help="Write the measurements as JSON; '-' = stdout only."),
    markdown: Optional[str] = typer.Option(None, "--markdown", metavar="FILE", help="Write them as markdown; '-' = stdout only."),
    html: Optional[str] = typer.Option(None, "--html", metavar="FILE", help="Write one self-contained HTML page: the measurements and the histograms of positive- and negative-pair cosines. Needs the plot extra."),
    plots: Optional[str] = typer.Option(None, "--plots", metavar="DIR", help="Write the page's figure as cosines.png into DIR (created if missing). Needs the plot extra."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files (--json, --markdown, --html, --plots)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print no table."),
) -> None:
    """The paper's theory on paired embeddings: alignment, the η² bound, uniformity, modality gap.

    \b
    Examples:
      gaussaudit pairs view1.npy view2.npy
      gaussaudit pairs img_emb/ text_emb/ --json pairs.json
      gaussaudit pairs view1.npy view2.npy --html pairs.html
    """

    def body():
        import json

        from gaussaudit.pairs import audit_pairs
        from gaussaudit.report.figures import PAIRS_FIGURE_NAMES, figure_file_name
        from gaussaudit.report.pairs import render_markdown_pairs, render_terminal_pairs

        outputs = Outputs(json_path=json_path, markdown=markdown, html=html, plots=plots, overwrite=overwrite,
                          quiet=quiet)
        _check_outputs(_input_files([a, b]), outputs, [figure_file_name(name) for name in PAIRS_FIGURE_NAMES])
        options = {k: v for k, v in (("key", key), ("column", column)) if v is not None}
        report = audit_pairs([a], [b], temperature=temperature, sample=sample, uniformity_sample=uniformity_sample,
                             seed=seed, **options)
        if json_path is not None:
            document = {**report.to_dict(), "a": a, "b": b}
            _write_text(json_path, json.dumps(document, indent=2, ensure_ascii=False) + "\n", overwrite)
        if markdown is not None:
            _write_text(markdown, render_markdown_pairs(report), overwrite)
        if html is not None or plots is not None:
            from gaussaudit.report.figures import pairs_figures
            from gaussaudit.report.pairs import render_html_pairs

            _write_page(outputs, pairs_figures(report), lambda images: render_html_pairs(report, images))
        if _terminal_wanted(outputs):
            render_terminal_pairs(report, Console(highlight=False))

    _run(body, [a, b])


reproduce_app = typer.Typer(
    help="Recreate the paper's experiments with this auditor (needs the extract extra: PyTorch).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(reproduce_app, name="reproduce")


@reproduce_app.command("synthetic")
def reproduce_synthetic(
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs of each encoder [default: Laplace 150, GMM and binary 100 (Appendix E.1); --quick: 6]."),
    n: Optional[int] = typer.Option(None, "--n", help="Training rows per input [default: Laplace 20000, GMM and binary 10000; --quick: 2000]."),
    n_audit: Optional[int] = typer.Option(None, "--n-audit", help="Held-out rows audited at every stage [default: 5000; --quick: 1000]."),
    dim_in: Optional[int] = typer.Option(None, "--dim-in", help="Input dimension [default: 1024]."),
    dim_out: Optional[int] = typer.Option(None, "--dim-out", help="Embedding dimension [default: 256]."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Batch size, the InfoNCE negatives + 1 [default: 64]."),
    dims: Optional[str] = typer.Option(None, "--dims", metavar="D1,D2,…", help="Sweep: retrain the Laplace encoder at each embedding dimension (the appendix: 32,64,128,256) and measure CV, alignment and uniformity of held-out pairs instead of the table."),
    batch_sizes: Optional[str] = typer.Option(None, "--batch-sizes", metavar="N1,N2,…", help="Sweep: retrain the Laplace encoder at each batch size (the appendix: 8,16,32,48,64,96,128); with --dims, every pair."),
    threads: int = typer.Option(1, "--threads", help="torch threads; results are bitwise reproducible for a given count."),
    encoder: Optional[str] = typer.Option(None, "--encoder", metavar="linear|mlp", help="Encoder: one affine map, or affine-ReLU-affine [default: linear]."),
    seed: int = typer.Option(0, "--seed", help="Seed of data, initialisation, augmentation and batches."),
    audit_every: Optional[int] = typer.Option(None, "--audit-every", help="Audit the embeddings every this many epochs [default: 10; --quick: 2]."),
    inputs: Optional[List[str]] = typer.Option(None, "--input", metavar="laplace|gmm|binary", help="Input distribution, repeatable [default: all three]."),
    quick: bool = typer.Option(False, "--quick", help="A short run (seconds): fewer rows and epochs; options given still apply."),
    json_path: Optional[str] = typer.Option(None, "--json", metavar="PATH", help="Write every audit as JSON to PATH; '-' = stdout only."),
    plot: Optional[str] = typer.Option(None, "--plot", metavar="FILE.png", help="Draw the metrics along epochs per input (with --dims/--batch-sizes: the sweep's figure). Needs the plot extra."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files (--json, --plot)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print no table or progress."),
) -> None:
    """The paper's synthetic experiment (Appendix E.1): InfoNCE on the CPU, audited along training.

    Trains a linear (or MLP) encoder with InfoNCE on Laplace, Gaussian-mixture
    and sparse binary inputs (seeded, deterministic) and audits the raw inputs,
    the embeddings at init, along training and after it, and a supervised
    baseline; prints the paper's Table 1 as measured with its values beside.
    --dims / --batch-sizes run the appendix's sweeps instead. Setup and the
    paper's numbers: docs/reproduce.md.

    \b
    Examples:
      gaussaudit reproduce synthetic
      gaussaudit reproduce synthetic --quick --json runs.json --plot epochs.png
      gaussaudit reproduce synthetic --dims 32,64,128,256 --plot dims.png
      gaussaudit reproduce synthetic --batch-sizes 8,16,32,64,128 --epochs 30
    """

    def body():
        from gaussaudit.reproduce.synthetic import SyntheticSettings, run_sweep, run_synthetic, sweep_grid

        outputs = Outputs(json_path=json_path, overwrite=overwrite, quiet=quiet)
        given = {name: value for name, value in (("epochs", epochs), ("n", n), ("n_audit", n_audit),
                                                  ("dim_in", dim_in), ("dim_out", dim_out), ("encoder", encoder),
                                                  ("audit_every", audit_every), ("batch", batch)) if value is not None}
        if inputs:
            given["inputs"] = tuple(dict.fromkeys(inputs))
        sweeping = dims is not None or batch_sizes is not None
        if sweeping and inputs and set(inputs) != {"laplace"}:
            raise GaussAuditError("--dims and --batch-sizes sweep the Laplace experiment (the appendix's figures); "
                                  "leave out --input.")
        settings = (SyntheticSettings.quick if quick else SyntheticSettings)(seed=seed, threads=threads,
                                                                             **given).validated()
        if sweeping:
            sweep_grid(dims, batch_sizes, settings)  # a malformed list fails before any training
        _check_outputs(set(), outputs, plot=plot)
        show = _terminal_wanted(outputs)
        err = Console(stderr=True, highlight=False)
        say = (lambda line: err.print(f"  [dim]{escape(line)}[/dim]")) if show else None
        result = run_sweep(dims, batch_sizes, settings, progress=say) if sweeping else run_synthetic(settings, progress=say)
        if json_path is not None:
            import json

            _write_text(json_path, json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n", overwrite)
        if plot is not None:
            from gaussaudit.io.writers import write_bytes_atomic
            from gaussaudit.report.figures import reproduce_png, sweep_png

            write_bytes_atomic(plot, (sweep_png if sweeping else reproduce_png)(result), overwrite=overwrite)
        if show:
            from gaussaudit.reproduce.report import render_terminal_reproduce, render_terminal_sweep

            (render_terminal_sweep if sweeping else render_terminal_reproduce)(result, Console(highlight=False))

    _run(body)


@reproduce_app.command("digits")
def reproduce_digits(
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs of each model [default: 60; --quick: 6]."),
    dim_out: Optional[int] = typer.Option(None, "--dim-out", help="Embedding dimension [default: 64]."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, initialisation, augmentation and batches."),
    audit_every: Optional[int] = typer.Option(None, "--audit-every", help="Audit both models every this many epochs [default: 5; --quick: 3]."),
    quick: bool = typer.Option(False, "--quick", help="A short run: 6 epochs; options given still apply."),
    json_path: Optional[str] = typer.Option(None, "--json", metavar="PATH", help="Write every audit as JSON to PATH; '-' = stdout only."),
    plot: Optional[str] = typer.Option(None, "--plot", metavar="FILE.png", help="Draw CV, AD Avg. and the DP pass share along training, InfoNCE against cross-entropy. Needs the plot extra."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files (--json, --plot)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print no table or progress."),
) -> None:
    """Real images, offline: InfoNCE against cross-entropy on scikit-learn's digits.

    One MLP (64 → 256 → ReLU → 64), the same initialisation, trained with
    InfoNCE on augmented views and with cross-entropy on the labels; the
    held-out split's embeddings audited along training (docs/reproduce.md).

    \b
    Examples:
      gaussaudit reproduce digits
      gaussaudit reproduce digits --quick --json digits.json
      gaussaudit reproduce digits --plot digits.png
    """

    def body():
        from gaussaudit.reproduce.digits import DigitsSettings, run_digits

        outputs = Outputs(json_path=json_path, overwrite=overwrite, quiet=quiet)
        given = {name: value for name, value in (("epochs", epochs), ("dim_out", dim_out), ("audit_every", audit_every))
                 if value is not None}
        settings = (DigitsSettings.quick if quick else DigitsSettings)(seed=seed, **given).validated()
        _check_outputs(set(), outputs, plot=plot)
        show = _terminal_wanted(outputs)
        err = Console(stderr=True, highlight=False)
        result = run_digits(settings, progress=(lambda line: err.print(f"  [dim]{escape(line)}[/dim]")) if show else None)
        if json_path is not None:
            import json

            _write_text(json_path, json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n", overwrite)
        if plot is not None:
            from gaussaudit.io.writers import write_bytes_atomic
            from gaussaudit.report.figures import digits_png

            write_bytes_atomic(plot, digits_png(result), overwrite=overwrite)
        if show:
            from gaussaudit.reproduce.report import render_terminal_digits

            render_terminal_digits(result, Console(highlight=False))

    _run(body)


def _file_prefixes(labels) -> list[str]:
    """File-name-safe, distinct prefixes for each column's figure files."""
    import re

    out: list[str] = []
    for label in labels:
        suffix = Path(label).suffix
        if suffix.lower() in SUPPORTED_SUFFIXES:  # emb.npy-qq.png reads badly
            label = label[: -len(suffix)]
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "input"
        name, k = base, 2
        while name in out:
            name, k = f"{base}_{k}", k + 1
        out.append(name)
    return out


@app.command()
def extract(
    model: str = typer.Option(..., "--model", "-m", help="An open_clip architecture (e.g. ViT-B-32; see open_clip.list_models()), simclr-resnet18 / simclr-resnet50, a supervised torchvision classifier (resnet18, resnet34, resnet50, densenet121: the penultimate layer), dino-vits16/vits8/vitb16/vitb8, or a local text encoder st:FOLDER / hf:FOLDER (with --texts).", show_default=False),
    data: Optional[str] = typer.Option(None, "--data", "-d", metavar="DIR", help="Folder of images (jpg, jpeg, png, webp, bmp, gif, tiff), read recursively in sorted order; or webdataset tar shards (img2dataset's format): 'shards/{00000..00009}.tar', a glob, one .tar, or a folder of .tar files. Each tar is a shard for --resume."),
    out: Optional[str] = typer.Option(None, "--out", "-o", metavar="OUT", help="Output: .parquet (columns path, embedding) or .npy (+ sidecar OUT.json listing the paths). Default: DIR.embeddings.parquet beside the image folder (FILE.embeddings.parquet beside --texts).", show_default=False),
    pretrained: Optional[str] = typer.Option(None, "--pretrained", metavar="TAG", help="open_clip pretrained tag (open_clip.list_pretrained()); fetched from open_clip's hub."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", metavar="PATH", help="Local checkpoint file: an open_clip state dict/checkpoint, or a SimCLR checkpoint (any common layout)."),
    texts: Optional[str] = typer.Option(None, "--texts", metavar="FILE", help="Embed texts instead of images (CLIP's text tower, or a st:/hf: text encoder): .txt (one a line), .jsonl or .parquet."),
    text_column: Optional[str] = typer.Option(None, "--text-column", metavar="NAME", help="The .jsonl field or .parquet column of the texts (default: text, sentence, caption or content, else the only text field)."),
    head: bool = typer.Option(False, "--head", help="SimCLR: embed through the checkpoint's projection head instead of the backbone."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda or cuda:N."),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 autocast on GPU, fp32 on CPU), fp32, fp16 or bf16."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", help="Inputs per batch (default 256 on GPU, 32 on CPU)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", help="Image-decoding processes (default: up to 8 with a GPU; on the CPU none below 8 cores, as they compete with the model's threads)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Embed only the first N inputs in sorted order."),
    shard_size: int = typer.Option(10_000, "--shard-size", help="Inputs per shard: finished shards are kept on disk and never redone by --resume."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its finished shards (OUT.parts/)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing OUT."),
    strict: bool = typer.Option(False, "--strict", help="Fail at the first unreadable image instead of skipping and listing it."),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Accept a checkpoint whose backbone has weights the model has no place for (a deeper network's); by default an error."),
    layout: str = typer.Option("file", "--layout", metavar="file|clip-retrieval", help="file: OUT is one .parquet or .npy file. clip-retrieval: OUT is a folder as clip-retrieval writes it: img_emb/img_emb_0.npy (or text_emb/text_emb_0.npy) of float16 rows, each L2-normalised, and metadata/metadata_0.parquet (image_path, caption) in row order; embedding-reader, autofaiss and gaussaudit scan read it."),
    run_scan: bool = typer.Option(False, "--scan", help="Run the Gaussianity audit (gaussaudit scan) on the result straight away."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
) -> None:
    """Embed a folder of images (or captions) with a CLIP or SimCLR model, into the file scan reads.

    \b
    Examples:
      gaussaudit extract -m ViT-B-32 --pretrained laion2b_s34b_b79k --data imgs/ --scan
      gaussaudit extract -m ViT-B-32 --checkpoint vit_b32.pt --data imgs/ --out emb.npy
      gaussaudit extract -m simclr-resnet50 --checkpoint simclr.ckpt --data imgs/
      gaussaudit extract -m ViT-B-32 --checkpoint vit_b32.pt --texts captions.txt
      gaussaudit extract -m ViT-B-32 --checkpoint vit_b32.pt --data 'shards/{00000..00009}.tar' --layout clip-retrieval --out emb/
      gaussaudit extract ... --resume   # after an interruption: finished shards are kept
    """
    from gaussaudit.extract.api import ExtractConfig
    from gaussaudit.extract.api import extract as run_extract

    progress = None
    try:
        config = ExtractConfig(
            model=model, out=out, data=data, texts=texts, text_column=text_column, pretrained=pretrained,
            checkpoint=checkpoint,
            head=head, device=device, precision=precision, batch_size=batch_size, workers=workers, limit=limit,
            shard_size=shard_size, resume=resume, overwrite=overwrite, strict=strict, allow_partial=allow_partial,
            layout=layout,
        )
        config = config.validated()
        if not quiet and out is None:
            Console(highlight=False, soft_wrap=True).print(f"no --out given: writing {config.out}")
        if not quiet:
            from gaussaudit.report.extract import RichExtractProgress

            progress = RichExtractProgress(Console(highlight=False, soft_wrap=True), Console(stderr=True, highlight=False))
        result = run_extract(config, progress=progress)
        if not quiet:
            from gaussaudit.report.extract import render_extract_summary

            render_extract_summary(result, Console(highlight=False, soft_wrap=True))
        if run_scan:
            report = audit(str(result.out))
            if not quiet:
                from gaussaudit.report.terminal import render_terminal

                render_terminal(report, Console(highlight=False))
    except GaussAuditError as exc:
        _close(progress)
        _fail(str(exc))
    except MemoryError:
        _close(progress)
        _fail("ran out of memory; lower --batch-size (and --workers).")
    except KeyboardInterrupt:
        _close(progress)
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            "interrupted; finished shards are kept: run the same command with --resume to continue."
        )
        raise typer.Exit(130)


def _close(progress) -> None:
    if progress is not None:
        progress.close()


#: Commands whose --check takes a mode (test or paper); elsewhere it is a plain flag.
_CHECK_WITH_MODE = ("scan", "compare", "track")


def optional_check_value(argv: list[str]) -> list[str]:
    """``--check`` alone means ``--check test``: click has no options whose value
    may be left out, so the default is written in before parsing.

    Examples
    --------
    >>> optional_check_value(["scan", "x.npy", "--check"])
    ['scan', 'x.npy', '--check', 'test']
    >>> optional_check_value(["scan", "--check", "paper", "x.npy"])
    ['scan', '--check', 'paper', 'x.npy']
    >>> optional_check_value(["scan", "--check", "x.npy"])
    ['scan', '--check', 'test', 'x.npy']
    >>> optional_check_value(["drift", "a.npy", "b.npy", "--check"])  # a plain flag there
    ['drift', 'a.npy', 'b.npy', '--check']
    """
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command not in _CHECK_WITH_MODE:
        return list(argv)
    out = []
    for i, arg in enumerate(argv):
        out.append(arg)
        if arg == "--check" and (i + 1 == len(argv) or argv[i + 1] not in CHECK_MODES):
            out.append("test")
    return out


def _terminated(signum, frame) -> None:
    # SIGTERM (a job scheduler, `kill`) unwinds like Ctrl-C: temporaries are
    # removed and finished extract shards kept, instead of dying mid-write.
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point."""
    import signal

    signal.signal(signal.SIGTERM, _terminated)
    try:
        app(args=optional_check_value(sys.argv[1:]))
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
