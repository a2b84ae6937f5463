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
                             drop_nonfinite=drop_nonfinite, threads=threads)
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


@app.command()
def extract(
    model: str = typer.Option(..., "--model", "-m", help="An open_clip architecture (e.g. ViT-B-32; see open_clip.list_models()), or simclr-resnet18 / simclr-resnet50.", show_default=False),
    data: Optional[str] = typer.Option(None, "--data", "-d", metavar="DIR", help="Folder of images (jpg, jpeg, png, webp, bmp, gif, tiff), read recursively in sorted order."),
    out: str = typer.Option(..., "--out", "-o", metavar="OUT", help="Output: .parquet (columns path, embedding) or .npy (+ sidecar OUT.json listing the paths).", show_default=False),
    pretrained: Optional[str] = typer.Option(None, "--pretrained", metavar="TAG", help="open_clip pretrained tag (open_clip.list_pretrained()); fetched from open_clip's hub."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", metavar="PATH", help="Local checkpoint file: an open_clip state dict/checkpoint, or a SimCLR checkpoint (any common layout)."),
    texts: Optional[str] = typer.Option(None, "--texts", metavar="FILE", help="Embed captions (one a line) with CLIP's text tower instead of images."),
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
    run_scan: bool = typer.Option(False, "--scan", help="Run the Gaussianity audit (gaussaudit scan) on the result straight away."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
) -> None:
    """Embed a folder of images (or captions) with a CLIP or SimCLR model, into the file scan reads.

    \b
    Examples:
      gaussaudit extract --model ViT-B-32 --pretrained laion2b_s34b_b79k --data imgs/ --out emb.parquet --scan
      gaussaudit extract --model ViT-B-32 --checkpoint vit_b32.pt --data imgs/ --out emb.npy
      gaussaudit extract --model simclr-resnet50 --checkpoint simclr.ckpt --data imgs/ --out emb.parquet
      gaussaudit extract --model ViT-B-32 --checkpoint vit_b32.pt --texts captions.txt --out text.parquet
      gaussaudit extract ... --resume        # after an interruption: finished shards are not redone
    """
    from gaussaudit.extract.api import ExtractConfig
    from gaussaudit.extract.api import extract as run_extract

    progress = None
    try:
        config = ExtractConfig(
            model=model, out=out, data=data, texts=texts, pretrained=pretrained, checkpoint=checkpoint,
            head=head, device=device, precision=precision, batch_size=batch_size, workers=workers, limit=limit,
            shard_size=shard_size, resume=resume, overwrite=overwrite, strict=strict,
        )
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


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
