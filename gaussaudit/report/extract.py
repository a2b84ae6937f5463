"""What ``gaussaudit extract`` shows: what was loaded before the run, a progress
bar with inputs/s while it runs (on stderr), and what was written, skipped and
how fast at the end."""
from __future__ import annotations

import json
import time

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from gaussaudit.extract.api import ExtractPlan, ExtractProgress, ExtractResult

#: Unreadable inputs listed one by one; the rest are counted (all are in the output's metadata).
MAX_LISTED_SKIPPED = 20


class _RateColumn(ProgressColumn):
    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.speed
        return Text(f"{speed:,.1f} {self.unit}/s" if speed else f"– {self.unit}/s")


def render_extract_header(plan: ExtractPlan, console: Console) -> None:
    """The model, its weights (what was loaded, what ignored), the device and the plan."""
    model = plan.model
    workers = f" · {plan.workers} worker{'s' if plan.workers != 1 else ''}" if plan.unit == "images" else ""
    console.print(
        f"[bold]gaussaudit extract[/bold] · {escape(model.name)}{' (projection head)' if model.head else ''} · "
        f"{plan.n_items:,} {plan.unit} · {plan.device} · {plan.precision} · batch {plan.batch_size}{workers}"
    )
    for line in model.report:
        console.print(f"  {escape(line)}")
    if model.checkpoint_sha256:
        console.print(f"  weights sha256 {model.checkpoint_sha256}")
    console.print(f"  preprocessing {escape(json.dumps(model.preprocessing, separators=(', ', ': ')))}")
    if plan.shards_done:
        console.print(
            f"  resuming: {plan.shards_done} of {plan.n_shards} shards already done "
            f"({plan.items_done:,} {plan.unit}); they are not recomputed"
        )


def render_extract_summary(result: ExtractResult, console: Console) -> None:
    """What was written, what was skipped (listed), and the throughput."""
    plan = result.plan
    dtype = "float32"
    if result.metadata.get("layout") == "clip-retrieval":
        dtype = "float16, L2-normalised"
        sub = "text_emb" if result.metadata.get("key") == "text" else "img_emb"
        where = f"clip-retrieval layout: {sub}/{sub}_0.npy, metadata/metadata_0.parquet"
    elif result.sidecar is None:
        where = f"columns '{result.metadata.get('key', 'path')}', 'embedding'"
    else:
        where = f"{result.metadata.get('key', 'path')}s in {escape(str(result.sidecar))}"
    console.print(f"wrote {escape(str(result.out))}: {result.rows:,} rows × {result.dim} {dtype} ({where})")
    if result.skipped:
        n = len(result.skipped)
        console.print(f"skipped {n:,} unreadable {plan.unit if n != 1 else plan.unit[:-1]} (not in the output):")
        for key, reason in result.skipped[:MAX_LISTED_SKIPPED]:
            console.print(f"  {escape(key)}: {escape(reason)}")
        if n > MAX_LISTED_SKIPPED:
            console.print(f"  … and {n - MAX_LISTED_SKIPPED:,} more (all listed under 'skipped' in the output's metadata)")
    if result.encoded:
        console.print(
            f"encoded {result.encoded:,} {plan.unit} in {result.seconds:.2f} s: "
            f"[bold]{result.items_per_second:,.1f} {plan.unit}/s[/bold] "
            f"({plan.device}, {plan.precision}, batch {plan.batch_size})"
        )
    for note in result.notes:
        console.print(f"note: {escape(note)}")
    if plan.shards_done:
        console.print(
            f"resumed: {plan.shards_done} of {plan.n_shards} shards were already done; "
            f"{result.encoded:,} {plan.unit} encoded in this run"
        )


class RichExtractProgress(ExtractProgress):
    """The header on ``console``; on ``bar_console`` (stderr) a live progress bar
    with inputs/s when it is a terminal, else one line per finished shard, which
    is what a log file of a long run needs."""

    def __init__(self, console: Console, bar_console: Console) -> None:
        self.console = console
        self.bar_console = bar_console
        self._progress: Progress | None = None
        self._task = None
        self._plan: ExtractPlan | None = None
        self._processed = 0
        self._shards_written = 0
        self._started = 0.0

    def start(self, plan: ExtractPlan) -> None:
        render_extract_header(plan, self.console)
        self._plan, self._started = plan, time.perf_counter()
        if not self.bar_console.is_terminal:
            return
        self._progress = Progress(
            TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), _RateColumn(plan.unit),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            # The summary repeats the throughput; the bar need not stay.
            console=self.bar_console, transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("embedding", total=plan.n_items, completed=plan.items_done)

    def advance(self, n: int) -> None:
        self._processed += n
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def shard_written(self, index: int) -> None:
        self._shards_written += 1
        if self._progress is None and self._plan is not None:
            plan = self._plan
            rate = self._processed / max(time.perf_counter() - self._started, 1e-9)
            self.bar_console.print(
                f"shard {index + 1}/{plan.n_shards} written · "
                f"{plan.items_done + self._processed:,}/{plan.n_items:,} {plan.unit} · {rate:,.1f} {plan.unit}/s"
            )

    def finish(self) -> None:
        self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
