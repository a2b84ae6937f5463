"""The reading pass on a Dask cluster: each shard is read by a worker, where
it lies, and only its partial state and its rows of the seeded sample come
back to the client.

The single-machine pass (:func:`gaussaudit.streaming.read_pass`) folds the
states of a shard's chunks in row order into the shard's state, then the
shards' states in shard order. A worker runs exactly that first fold for its
shard (:func:`gaussaudit.streaming.shard_part`) and the client the second, so
the result equals the single-machine pass bit for bit, however many workers
there are and in whatever order they finish. A task is a pure function of its
shard, so when Dask retries it after losing a worker, its rows are counted
once: only the result of the run that finished is merged.

The sample is drawn on the client from the row counts in the headers before
the pass (exactly uniform, as on one machine); each task gets the indices
that fall in its shard. Its size is bounded (``sample``), and the tests after
the pass run on the client.

Another engine (Spark, Ray) needs only the same two steps: run
:func:`~gaussaudit.streaming.shard_part` per shard, and hand the parts to
:func:`merge_parts` in shard order.

Needs the ``dask`` extra: ``pip install 'gaussaudit[dask]'``.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np

from gaussaudit.errors import GaussAuditError, option_name
from gaussaudit.io.sources import Dataset
from gaussaudit.progress import Progress, SilentProgress
from gaussaudit.streaming import (
    PassResult,
    ShardPart,
    check_rows_read,
    finish_pass,
    first_exponent,
    sample_dtype,
    shard_part,
)

#: What ``--scheduler`` takes besides an address: a cluster started here and stopped at the end.
LOCAL = "local"


def _distributed():
    try:
        import distributed
    except ImportError:
        raise GaussAuditError(f"{option_name('scheduler')} runs the pass on a Dask cluster, and dask.distributed is not "
                              "installed: pip install 'gaussaudit[dask]'.") from None
    return distributed


@contextlib.contextmanager
def connect(scheduler: str, workers: int | None = None, *, say=None) -> Iterator:
    """A Dask client for ``scheduler``: ``"local"`` starts a LocalCluster of
    ``workers`` processes (default: one per core) and stops it on exit; an
    address (``tcp://host:8786``) joins a running cluster. ``say`` hears the
    dashboard link.

    Examples
    --------
    >>> with connect("ftp://nowhere") as client:  # doctest: +ELLIPSIS
    ...     pass
    Traceback (most recent call last):
    ...
    gaussaudit.errors.GaussAuditError: scheduler must be 'local' or a Dask scheduler address (tcp://host:8786); ...
    """
    if scheduler != LOCAL and not scheduler.startswith(("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")):
        raise GaussAuditError(f"{option_name('scheduler')} must be 'local' or a Dask scheduler address "
                              f"(tcp://host:8786); got {scheduler!r}.")
    if workers is not None and scheduler != LOCAL:
        raise GaussAuditError(f"{option_name('workers')} sizes a cluster started here ({option_name('scheduler')} "
                              "local); a running cluster has the workers it has.")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise GaussAuditError(f"{option_name('workers')} must be a whole number of at least 1; got {workers!r}.")
    distributed = _distributed()
    with contextlib.ExitStack() as stack:
        if scheduler == LOCAL:
            address = stack.enter_context(local_cluster(workers)).scheduler_address
        else:
            address = scheduler
        try:
            client = stack.enter_context(distributed.Client(address, timeout="10s"))
        except (OSError, TimeoutError) as exc:
            raise GaussAuditError(f"{option_name('scheduler')} {scheduler}: no Dask scheduler answered ({exc}).") from None
        if say is not None:
            link = client.dashboard_link
            say(f"Dask cluster: {len(client.scheduler_info().get('workers', {}))} workers; dashboard {link}")
        yield client


@contextlib.contextmanager
def local_cluster(workers: int | None = None):
    """A LocalCluster of ``workers`` processes (default: one per core), one
    thread each, stopped on exit.

    Dask's nannies write their workers' settings (``OPENBLAS_NUM_THREADS=1``,
    ``MALLOC_TRIM_THRESHOLD_``…) into this process's ``os.environ``; they are
    put back as they were, so nothing started from this process later inherits
    them.
    """
    import os

    import dask

    distributed = _distributed()
    saved = dict(os.environ)

    def restore() -> None:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        os.environ.update(saved)

    n = workers or os.cpu_count() or 1
    try:
        # Dask's nannies set MALLOC_TRIM_THRESHOLD_=65536 in their workers, which turns off
        # glibc's adaptive mmap threshold: every 2 MB slab buffer of the pass is then a fresh
        # mapping, faulted in page by page, and the pass ran 2.3x slower on a worker than
        # in a plain process (benchmarks/bench_cluster.py). Peak memory is the same without it.
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            # One thread per worker process: a shard task uses its worker's core, and the
            # numpy inside it releases the GIL only in parts.
            cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                               dashboard_address=":0", silence_logs=40)
        restore()
        with cluster:
            yield cluster
    finally:
        restore()


def _plan(dataset: Dataset, chosen: np.ndarray | None) -> list[np.ndarray | None]:
    """Each shard's rows of the sample, as indices within the shard."""
    plan, start = [], 0
    for shard in dataset.shards:
        if chosen is None:
            plan.append(None)
        else:
            lo, hi = np.searchsorted(chosen, [start, start + shard.n_rows])
            plan.append(chosen[lo:hi] - start)
        start += shard.n_rows
    return plan


def merge_parts(dataset: Dataset, chosen: np.ndarray | None, parts: list[ShardPart], exponent: int) -> PassResult:
    """The pass's result from every shard's part, in shard order: the same
    folds as :func:`~gaussaudit.streaming.read_pass` on one machine."""
    check_rows_read(dataset.shards, [part.rows_read for part in parts])
    n_chosen = dataset.n_rows if chosen is None else len(chosen)
    tested = np.empty((dataset.dim, n_chosen), dtype=sample_dtype(dataset.dtype))
    tested_norms = np.empty(n_chosen, dtype=np.float64)
    kept = np.ones(n_chosen, dtype=bool)
    column = 0
    for part in parts:
        m = part.tested.shape[1]
        tested[:, column:column + m] = part.tested
        tested_norms[column:column + m] = part.tested_norms
        kept[column:column + m] = part.kept
        column += m
    return finish_pass([part.stats for part in parts], tested, tested_norms, kept, exponent)


def cluster_pass(client, dataset: Dataset, chosen: np.ndarray | None, *, normalize: bool = True,
                 threads: int | None = None, progress: Progress | None = None) -> PassResult:
    """:func:`~gaussaudit.streaming.read_pass` with each shard read on a
    worker of ``client``'s cluster; the same result, bit for bit.

    ``threads``: chunk threads per shard task (default 1: a worker's
    parallelism is its threads, each running a shard). Progress advances by
    a shard's rows as its task finishes.
    """
    distributed = _distributed()
    progress = progress or SilentProgress()
    progress.stage("reading", dataset.n_rows)
    plan = _plan(dataset, chosen)
    threads = 1 if threads is None else threads
    shards = dataset.shards
    non_empty = [shard for shard in shards if shard.n_rows]
    exponent = 0
    if non_empty:  # one factor for every row, from the first chunk, as on one machine
        exponent = _result(client.submit(first_exponent, non_empty[0], pure=False))
    futures = {client.submit(shard_part, shard, rows, normalize, threads, exponent, pure=False): i
               for i, (shard, rows) in enumerate(zip(shards, plan))}
    parts: list[ShardPart | None] = [None] * len(shards)
    try:
        for future in distributed.as_completed(futures):
            index = futures[future]
            parts[index] = _result(future)
            future.release()
            progress.advance(parts[index].rows_read)
    finally:
        for future in futures:
            future.cancel()
    return merge_parts(dataset, chosen, parts, exponent)


def _result(future):
    """A task's result; a worker's GaussAuditError is raised as it is, and a
    task Dask gave up on (its workers kept dying) says so."""
    try:
        return future.result()
    except GaussAuditError:
        raise
    except Exception as exc:
        kind = type(exc).__name__
        if kind == "KilledWorker":
            raise GaussAuditError("a shard's task was lost with its worker more times than the cluster allows "
                                  "(distributed.scheduler.allowed-failures): the workers may be running out of "
                                  "memory; give them more, or fewer threads each.") from None
        raise
