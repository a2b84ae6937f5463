"""The one pass over the data that every scan makes.

Each chunk of rows, as the readers yield it, is turned into a partial state
(:class:`RowStats`: norm moments and histogram, per-feature moments of the
prepared rows, counts of zero-norm and non-finite rows) on a small thread pool,
and the states are merged in row order, so the result does not depend on the
number of threads. The rows of the seeded sample are written into one
feature-major buffer as they stream past. Memory is the sample buffer plus a
few chunks in flight, whatever the size of the input.
"""
from __future__ import annotations

import itertools
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from gaussaudit.errors import GaussAuditError, option_name, option_set
from gaussaudit.io.sources import Dataset
from gaussaudit.prep import l2_normalize, row_norms
from gaussaudit.progress import Progress, SilentProgress

if TYPE_CHECKING:
    from gaussaudit.config import AuditConfig
from gaussaudit.stats._blocks import default_threads
from gaussaudit.stats.histogram import StreamingHistogram
from gaussaudit.stats.running import FeatureMoments, RunningMoments

#: Share of the memory the system reports available that the sample buffer may take.
BUFFER_MEMORY_SHARE = 0.6
# Values per slab of rows processed at once (2 MB of float64: fits in cache).
_SLAB_VALUES = 1 << 18


@dataclass
class RowStats:
    """Every-row statistics of a stream of chunks, as one mergeable state.

    ``norms`` and ``norm_histogram`` cover the raw norms of finite rows;
    ``moments`` the prepared (L2-normalised unless asked otherwise) finite rows.
    ``first_nonfinite`` is ``(source, row in source)`` of the earliest row with
    NaN, inf or a missing value; merging keeps the earlier state's.
    """

    norms: RunningMoments = field(default_factory=RunningMoments)
    norm_histogram: StreamingHistogram = field(default_factory=StreamingHistogram)
    moments: FeatureMoments = field(default_factory=FeatureMoments)
    zero_norm_rows: int = 0
    nonfinite_rows: int = 0
    first_nonfinite: tuple[str, int] | None = None

    def merge(self, later: "RowStats") -> "RowStats":
        """A new state for this state's rows followed by ``later``'s."""
        return RowStats(
            norms=self.norms.merge(later.norms),
            norm_histogram=self.norm_histogram.merge(later.norm_histogram),
            moments=self.moments.merge(later.moments),
            zero_norm_rows=self.zero_norm_rows + later.zero_norm_rows,
            nonfinite_rows=self.nonfinite_rows + later.nonfinite_rows,
            first_nonfinite=self.first_nonfinite or later.first_nonfinite,
        )


@dataclass
class PassResult:
    """What the pass leaves: every-row statistics and the tested sample.

    ``tested`` is feature-major (d × m), ``tested_norms`` the raw norms of its
    m rows; rows of the sample that were not finite are already left out.
    """

    stats: RowStats
    tested: np.ndarray
    tested_norms: np.ndarray
    #: Every value was multiplied by 2**scale_exponent (exact) before any arithmetic; 0 for data of usual scale.
    scale_exponent: int = 0


#: Values whose largest magnitude lies outside this range are rescaled by a power
#: of two: their fourth powers (kurtosis) would overflow or underflow float64.
SAFE_MAGNITUDE = (1e-60, 1e60)


def scale_exponent(chunk: np.ndarray) -> int:
    """The power of two that brings ``chunk``'s largest finite magnitude near 1,
    or 0 when it is within :data:`SAFE_MAGNITUDE` already.

    Multiplying by a power of two is exact in floating point, and every
    statistic gaussaudit reports is scale-free, so the results equal those of
    the rescaled data.

    Examples
    --------
    >>> scale_exponent(np.array([[3.0, -1e300]])), scale_exponent(np.array([[1e-300]])), scale_exponent(np.ones((2, 2)))
    (-997, 996, 0)
    """
    with np.errstate(invalid="ignore"):  # a signalling NaN warns when widened; it is counted later
        x = np.asarray(chunk, dtype=np.float64)
    finite = np.abs(x[np.isfinite(x)])
    top = float(finite.max()) if finite.size else 0.0
    if top == 0.0 or SAFE_MAGNITUDE[0] <= top <= SAFE_MAGNITUDE[1]:
        return 0
    return -int(np.frexp(top)[1])


def sample_dtype(input_dtype) -> np.dtype:
    """Precision the sample is held in: float32 when the input has no more than
    that (float16/32, integers of up to 16 bits, booleans), float64 otherwise.

    The tests sort in this dtype and compute every sum in float64, so a float32
    input loses only the rounding of its normalised values (relative 6e-8), far
    below what A² or a p-value resolves at any n.
    """
    dt = np.dtype(input_dtype)
    narrow = (dt.kind == "f" and dt.itemsize <= 4) or (dt.kind in "iub" and dt.itemsize <= 2)
    return np.dtype(np.float32 if narrow else np.float64)


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return None


def check_buffer_fits(rows: int, dim: int, dtype: np.dtype, sample: int, source: str = "the input") -> None:
    """Fail before reading when the sample buffer cannot fit in memory."""
    needed = rows * dim * np.dtype(dtype).itemsize
    available = _available_memory()
    if available is None or needed <= BUFFER_MEMORY_SHARE * available:
        return
    gib = 1024**3
    asked = (f"{option_set('sample', 0)} keeps every row" if sample == 0
             else f"{option_set('sample', sample)} keeps {rows:,} rows")
    raise GaussAuditError(
        f"{source}: {asked}: {rows:,} × {dim} values as {np.dtype(dtype).name} need {needed / gib:.1f} GiB, "
        f"more than this machine can spare ({available / gib:.1f} GiB available). Use a smaller {option_name('sample')}; "
        "the norm CV and the every-row moments still cover every row."
    )


def _slab_stats(rows: np.ndarray, normalize: bool, source: str, local_start: int, exponent: int = 0):
    """RowStats of one slab of rows, its prepared rows and raw norms, and its finite mask."""
    with np.errstate(invalid="ignore", over="ignore"):  # signalling NaNs, and overflow to inf: counted below
        x = np.asarray(rows, dtype=np.float64)
        if exponent:
            x = np.ldexp(x, exponent)
    finite = np.isfinite(x).all(axis=1)
    everything_finite = bool(finite.all())
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite rows: counted, then left out
        norms = row_norms(x)
        prepared = l2_normalize(x, norms) if normalize else x
    finite_norms = norms if everything_finite else norms[finite]
    stats = RowStats()
    stats.norms.update(finite_norms)
    stats.norm_histogram.update(finite_norms)
    stats.moments = FeatureMoments.of_chunk(prepared if everything_finite else prepared[finite])
    stats.zero_norm_rows = int(np.count_nonzero(finite_norms == 0))
    if not everything_finite:
        bad = np.flatnonzero(~finite)
        stats.nonfinite_rows = int(bad.size)
        stats.first_nonfinite = (source, local_start + int(bad[0]))
    return stats, prepared, norms, finite


def read_pass(dataset: Dataset, chosen: np.ndarray | None, *, normalize: bool = True,
              threads: int | None = None, progress: Progress | None = None, client=None) -> PassResult:
    """Stream ``dataset`` once: every-row statistics plus the rows ``chosen``.

    Parameters
    ----------
    dataset : Dataset
        The shards, read in row order.
    chosen : ndarray or None
        Sorted global row indices of the sample; ``None`` keeps every row.
    normalize : bool
        L2-normalise rows for the moments and the sample (norms stay raw).
    threads : int, optional
        Chunks processed at once (default every core; on a cluster, per
        shard). Results are identical for any value: chunk states are merged
        in row order, within each shard and then shard by shard.
    progress : Progress, optional
        Told about the rows as they are done.
    client : distributed.Client, optional
        Read the shards on this Dask cluster's workers
        (:func:`gaussaudit.cluster.cluster_pass`); the result is identical, bit
        for bit, to the pass on this machine.

    Returns
    -------
    PassResult

    Examples
    --------
    >>> import numpy as np
    >>> from gaussaudit.io import open_dataset
    >>> from gaussaudit.prep import sample_indices
    >>> x = np.random.default_rng(0).standard_normal((5000, 16)).astype(np.float32)
    >>> result = read_pass(open_dataset(x), sample_indices(5000, 1000, seed=0))
    >>> result.tested.shape, result.tested.dtype, result.stats.norms.count
    ((16, 1000), dtype('float32'), 5000)
    >>> result.stats.moments.result().count  # every row, not just the sample
    5000
    """
    if client is not None:
        from gaussaudit.cluster import cluster_pass

        return cluster_pass(client, dataset, chosen, normalize=normalize, threads=threads, progress=progress)
    progress = progress or SilentProgress()
    progress.stage("reading", dataset.n_rows)
    streamed = _stream(dataset, chosen, normalize, threads, progress)
    check_rows_read(dataset.shards, streamed.rows_read)
    return finish_pass(streamed.shard_stats, streamed.tested, streamed.tested_norms, streamed.kept, streamed.exponent)


def check_rows_read(shards, rows_read) -> None:
    """Each shard gave the rows its header promised."""
    for shard, seen in zip(shards, rows_read):
        if seen != shard.n_rows:
            raise GaussAuditError(f"{shard.source}: its header promises {shard.n_rows:,} rows but "
                                  f"{seen:,} could be read; the file is damaged.")


def finish_pass(shard_stats, tested, tested_norms, kept, exponent: int) -> PassResult:
    """The pass's result from each shard's state, in shard order, and the sample."""
    total = RowStats()
    for stats in shard_stats:
        total = total.merge(stats)
    if not kept.all():
        tested, tested_norms = tested[:, kept], tested_norms[kept]
    return PassResult(total, tested, tested_norms, exponent)


@dataclass
class ShardPart:
    """One shard's share of the pass, as a cluster worker sends it back.

    ``tested`` holds the shard's chosen rows (feature-major, non-finite ones
    included, flagged in ``kept``), ``rows_read`` the rows its file gave.
    """

    stats: RowStats
    tested: np.ndarray
    tested_norms: np.ndarray
    kept: np.ndarray
    rows_read: int


def shard_part(shard, chosen: np.ndarray | None, normalize: bool, threads: int | None, exponent: int) -> ShardPart:
    """Stream one shard: its state and its rows of the sample (``chosen``:
    sorted row indices within the shard, ``None`` for every row). What a
    cluster worker runs; the single-machine pass folds the same states."""
    streamed = _stream(Dataset([shard]), chosen, normalize, threads, SilentProgress(), exponent)
    return ShardPart(streamed.shard_stats[0], streamed.tested, streamed.tested_norms, streamed.kept,
                     streamed.rows_read[0])


def first_exponent(shard) -> int:
    """:func:`scale_exponent` of ``shard``'s first chunk: the one factor of the whole pass."""
    first = next(iter(shard.chunks()), None)  # none from a damaged file: the row count check names it
    return 0 if first is None else scale_exponent(first)


@dataclass
class _Streamed:
    shard_stats: list
    tested: np.ndarray
    tested_norms: np.ndarray
    kept: np.ndarray
    rows_read: list
    exponent: int


def _stream(dataset: Dataset, chosen: np.ndarray | None, normalize: bool, threads: int | None,
            progress: Progress, exponent: int | None = None) -> _Streamed:
    """The pass over ``dataset``'s shards in row order: each shard's state (its
    chunks' states merged in order) and the sample. ``exponent`` None: taken
    from the first chunk."""
    n_total, dim = dataset.n_rows, dataset.dim
    n_chosen = n_total if chosen is None else len(chosen)
    dtype = sample_dtype(dataset.dtype)
    tested = np.empty((dim, n_chosen), dtype=dtype)
    tested_norms = np.empty(n_chosen, dtype=np.float64)
    kept = np.ones(n_chosen, dtype=bool)  # sampled rows that turned out finite
    slab = max(1, _SLAB_VALUES // max(dim, 1))

    def write_sample(start: int, prepared: np.ndarray, norms: np.ndarray, finite: np.ndarray) -> None:
        """Copy the chosen rows among rows ``start…`` into the buffer's columns."""
        if chosen is None:
            lo, hi, rows = start, start + len(prepared), slice(None)
        else:
            lo, hi = (int(i) for i in np.searchsorted(chosen, [start, start + len(prepared)]))
            rows = chosen[lo:hi] - start
        tested[:, lo:hi] = prepared[rows].T  # disjoint columns per chunk: no lock needed
        tested_norms[lo:hi] = norms[rows]
        kept[lo:hi] = finite[rows]

    def work(index: int, shard_source: str, local_start: int, start: int, chunk: np.ndarray):
        # Slabs of rows small enough to stay in cache: each value is touched a
        # dozen times (widen, check, norm, scale, four moments, copy), 3x faster
        # than whole chunks that spill to memory on every pass.
        if chunk.dtype.kind in "iu" and chunk.dtype.itemsize == 8 and chunk.size:
            top = max(abs(int(chunk.min())), abs(int(chunk.max())))
            if top > 2**53:
                raise GaussAuditError(
                    f"{shard_source}: holds integers up to {top:.3e}, beyond 2^53, where float64 (every statistic's "
                    "arithmetic) no longer holds each integer: nearby values would merge. Such values are ids or "
                    "hashes rather than embedding coordinates; to test them anyway, save them as float64 first.")
        state = None
        for s in range(0, len(chunk), slab):
            stats, prepared, norms, finite = _slab_stats(chunk[s : s + slab], normalize, shard_source, local_start + s,
                                                         exponent)
            write_sample(start + s, prepared, norms, finite)
            state = stats if state is None else state.merge(stats)
        return index, state or RowStats(), len(chunk)

    shard_stats = [RowStats() for _ in dataset.shards]
    rows_read = [0 for _ in dataset.shards]
    index_of = {id(shard): i for i, shard in enumerate(dataset.shards)}

    def absorb(done) -> None:
        index, stats, rows = done
        shard_stats[index] = shard_stats[index].merge(stats)
        progress.advance(rows)

    workers = default_threads() if threads is None else max(1, int(threads))
    # A bounded window of chunks in flight keeps memory flat; results are
    # merged oldest first, so the order of merging never depends on timing.
    in_flight: deque = deque()
    chunks = dataset.chunks()
    first = next(chunks, None)
    if exponent is None:
        # One factor for every row, from the first chunk: data of one scale throughout.
        exponent = 0 if first is None else scale_exponent(first[3])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for shard, local_start, start, chunk in itertools.chain([] if first is None else [first], chunks):
            index = index_of[id(shard)]
            rows_read[index] += len(chunk)
            in_flight.append(pool.submit(work, index, shard.source, local_start, start, chunk))
            while len(in_flight) > workers:
                absorb(in_flight.popleft().result())
        while in_flight:
            absorb(in_flight.popleft().result())
    return _Streamed(shard_stats, tested, tested_norms, kept, rows_read, exponent)


def sample_rows(source, config: AuditConfig, sample: int) -> np.ndarray:
    """A seeded uniform sample of ``source``'s rows (``sample`` of them; 0 =
    every row), prepared as a scan with ``config`` prepares them, n × d float64."""
    from gaussaudit.io.sources import dataset_options, open_dataset
    from gaussaudit.io.validation import check_nonfinite, check_row_count
    from gaussaudit.prep import sample_indices

    dataset = open_dataset(source, **{name: getattr(config, name, None) for name in dataset_options()})
    chosen = sample_indices(dataset.n_rows, sample, config.seed)
    passed = read_pass(dataset, chosen, normalize=config.normalize, threads=config.threads)
    check_nonfinite(passed.stats.nonfinite_rows, passed.stats.first_nonfinite, config.drop_nonfinite)
    name = dataset.paths[0] if len(dataset.paths) == 1 else f"the {len(dataset.paths)} input files"
    check_row_count(passed.tested.shape[1], name)
    rows = np.asarray(passed.tested, dtype=np.float64).T
    # the pass rescales data of extreme magnitude by a power of two; distances are not scale-free
    return np.ldexp(rows, -passed.scale_exponent) if passed.scale_exponent else rows
