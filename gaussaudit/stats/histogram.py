"""A mergeable one-pass histogram whose range follows the data (the partial-state
interface of DESIGN.md), so the norms of every row can be drawn without keeping them."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class StreamingHistogram:
    """Counts of a stream on an absolute grid of power-of-two bin widths.

    Bin ``k`` covers ``[k·width, (k+1)·width)``. The first chunk picks the finest
    width that fits its range in ``max_bins`` bins; when later values fall
    outside, adjacent bins pair up (the width doubles) until everything fits.
    Because every width is a power of two on a grid anchored at 0, two states
    built on disjoint parts merge exactly: the finer one is coarsened to the
    other's width and the counts add. Memory is ``max_bins`` counts, whatever
    the number of values.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(10.0, 1.0, 10_000)
    >>> a = StreamingHistogram().update(x[:4000])
    >>> b = StreamingHistogram().update(x[4000:])
    >>> m = a.merge(b)
    >>> int(m.counts.sum()), bool(m.edges[0] <= x.min() and x.max() < m.edges[-1])
    (10000, True)
    """

    max_bins: int = 1024
    width: float = 0.0  # 0 until the first finite value
    start: int = 0  # grid index of counts[0]
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    @property
    def edges(self) -> np.ndarray:
        """Bin edges, ``len(counts) + 1`` of them."""
        return (self.start + np.arange(len(self.counts) + 1)) * self.width

    def update(self, values) -> "StreamingHistogram":
        """Fold in a chunk (non-finite values are ignored); returns ``self``."""
        v = np.asarray(values, dtype=np.float64).ravel()
        v = v[np.isfinite(v)]
        if v.size == 0:
            return self
        if self.width == 0.0:
            self.width = _initial_width(float(v.min()), float(v.max()), self.max_bins)
        index = np.floor(v / self.width).astype(np.int64)
        lo, hi = int(index.min()), int(index.max())
        if self.counts.size:
            lo, hi = min(lo, self.start), max(hi, self.start + len(self.counts) - 1)
        doublings = 0
        while hi - lo + 1 > self.max_bins:
            lo, hi = lo >> 1, hi >> 1  # floor division by 2, negative indices included
            doublings += 1
        self._coarsen(doublings)
        index >>= doublings
        self._extend(lo, hi)
        self.counts += np.bincount(index - self.start, minlength=len(self.counts))
        return self

    def merge(self, other: "StreamingHistogram") -> "StreamingHistogram":
        """A new state equal to having seen this state's values and ``other``'s."""
        if other.width == 0.0:
            return _copy(self)
        if self.width == 0.0:
            return _copy(other)
        coarse, fine = (self, other) if self.width >= other.width else (other, self)
        out, finer = _copy(coarse), _copy(fine)
        finer._coarsen(round(math.log2(coarse.width / fine.width)))
        lo = min(out.start, finer.start)
        hi = max(out.start + len(out.counts), finer.start + len(finer.counts)) - 1
        doublings = 0
        while hi - lo + 1 > out.max_bins:
            lo, hi = lo >> 1, hi >> 1
            doublings += 1
        out._coarsen(doublings)
        finer._coarsen(doublings)
        out._extend(lo, hi)
        offset = finer.start - out.start
        out.counts[offset : offset + len(finer.counts)] += finer.counts
        return out

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """``(counts, edges)``: a copy of the counts and their ``len + 1`` bin edges."""
        return self.counts.copy(), self.edges

    def quantile(self, q: float) -> float:
        """Approximate quantile (linear within a bin); NaN when empty."""
        if not self.count:
            return float("nan")
        cum = np.concatenate([[0], np.cumsum(self.counts)]) / self.count
        return float(np.interp(q, cum, self.edges))

    def rebinned(self, lo: float, hi: float, bins: int) -> tuple[np.ndarray, np.ndarray]:
        """Counts on ``bins`` equal bins spanning ``[lo, hi]`` (for display).

        Each grid bin's count goes to the display bin holding its centre, so the
        result is exact up to one grid width; values outside are left out.
        """
        edges = np.linspace(lo, hi, bins + 1)
        centres = (self.start + np.arange(len(self.counts)) + 0.5) * self.width
        inside = (centres >= lo) & (centres <= hi)
        where = np.clip(np.searchsorted(edges, centres[inside], side="right") - 1, 0, bins - 1)
        return np.bincount(where, weights=self.counts[inside], minlength=bins).astype(np.int64), edges

    def coarsened(self, bins: int) -> "StreamingHistogram":
        """A copy with adjacent bins paired up until at most ``bins`` remain (for
        display): still on the power-of-two grid, so its counts are exactly those
        of ``np.histogram`` of the values on its edges.

        Examples
        --------
        >>> h = StreamingHistogram().update(np.arange(1000.0))
        >>> c = h.coarsened(50)
        >>> len(c.counts) <= 50, c.count == h.count
        (True, True)
        """
        out = _copy(self)
        if bins < 1:
            raise ValueError(f"bins must be at least 1; got {bins}")
        while out.counts.size > bins:
            out._coarsen(1)
        return out

    def at_width(self, width: float) -> "StreamingHistogram":
        """A copy with bins paired up until they are ``width`` wide (a power-of-two multiple
        of this width, as another state's after a merge): two states then share one grid."""
        out = _copy(self)
        if out.width == 0.0:
            out.width = width
            return out
        doublings = round(math.log2(width / out.width))
        if doublings < 0 or out.width * 2.0**doublings != width:
            raise ValueError(f"width {width!r} is not a power-of-two multiple of {out.width!r}")
        out._coarsen(doublings)
        return out

    def _coarsen(self, doublings: int) -> None:
        for _ in range(doublings):
            if self.counts.size:
                first = self.start >> 1
                index = (self.start + np.arange(len(self.counts))) >> 1
                self.counts = np.bincount(index - first, weights=self.counts).astype(np.int64)
                self.start = first
            self.width *= 2.0

    def _extend(self, lo: int, hi: int) -> None:
        grown = np.zeros(hi - lo + 1, dtype=np.int64)
        if self.counts.size:
            grown[self.start - lo : self.start - lo + len(self.counts)] = self.counts
        self.start, self.counts = lo, grown


def _initial_width(lo: float, hi: float, max_bins: int) -> float:
    """Finest power of two that spans ``[lo, hi]`` in at most ``max_bins`` - 1 bins."""
    span = hi - lo
    if span <= 0:
        span = abs(hi) * 2.0**-20 or 1.0  # one value so far: a fine grid around it
    return 2.0 ** math.ceil(math.log2(span / (max_bins - 1)))


def _copy(h: StreamingHistogram) -> StreamingHistogram:
    return StreamingHistogram(h.max_bins, h.width, h.start, h.counts.copy())
