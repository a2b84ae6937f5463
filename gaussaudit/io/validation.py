"""The one place where input data are judged: anything wrong becomes a
GaussAuditError whose message names the source and says what to do (options
are judged in :mod:`gaussaudit.config`)."""
from __future__ import annotations

import numpy as np

from gaussaudit.errors import GaussAuditError, option_set

#: Fewest rows an audit accepts: the D'Agostino-Pearson kurtosis approximation
#: needs 20 samples.
MIN_ROWS = 20


def check_dtype(dtype, source: str) -> np.dtype:
    """Accept real numbers (float, int, bool); reject 8-bit integers (quantized
    or bit-packed embeddings) and everything else."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu" and dtype.itemsize == 1:
        raise GaussAuditError(
            f"{source}: holds 8-bit integers (dtype {dtype}): quantized or bit-packed embeddings (precision "
            "'binary'/'ubinary' packs 8 dimensions into each byte), whose columns are not the embedding's "
            "coordinates. Audit the float embeddings; to test scalar-quantized int8 values as they are, save "
            "x.astype(np.float32)."
        )
    if dtype.kind in "fiub":
        return dtype
    kinds = {"c": "complex numbers", "O": "Python objects", "U": "text", "S": "bytes", "M": "dates", "m": "durations",
             "V": "records"}
    what = kinds.get(dtype.kind, f"dtype {dtype}")
    raise GaussAuditError(f"{source}: holds {what} (dtype {dtype}); expected real numbers (float16/32/64).")


def check_shape(shape: tuple[int, ...], source: str) -> tuple[int, int]:
    """Require a 2-D (rows = embeddings, columns = features) shape with features."""
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise GaussAuditError(f"{source}: its header claims the impossible shape {shape} (a negative size); "
                              "the file is damaged.")
    if len(shape) == 1:
        raise GaussAuditError(
            f"{source}: is a 1-D array of shape {shape}; expected 2-D (rows = embeddings, "
            "columns = features). For a single feature, save x.reshape(-1, 1)."
        )
    if len(shape) != 2:
        hint = f" If the last axis holds the features, save x.reshape(-1, {shape[-1]})." if len(shape) > 2 else ""
        raise GaussAuditError(
            f"{source}: is a {len(shape)}-D array of shape {shape}; expected 2-D (rows = embeddings, columns = features).{hint}"
        )
    if shape[1] == 0:
        raise GaussAuditError(f"{source}: has 0 columns; there are no features to test.")
    return shape[0], shape[1]


def check_row_count(n_rows: int, source: str, after: str = "") -> None:
    """At least MIN_ROWS rows, or a message that says how many there are."""
    if n_rows == 0:
        raise GaussAuditError(f"{source}: has 0 rows{after}; there is nothing to audit.")
    if n_rows < MIN_ROWS:
        raise GaussAuditError(
            f"{source}: has {n_rows} row{'s' if n_rows != 1 else ''}{after}; the normality tests need at least "
            f"{MIN_ROWS}."
        )


def finite_rows(chunk: np.ndarray, drop: bool, source: str, first_row: int = 0) -> np.ndarray:
    """The mask of rows of ``chunk`` without NaN, inf or missing values; without
    ``drop``, fail on the first such row (numbered from ``first_row``) instead.

    For passes that cannot count every bad row before failing (fit, score);
    :func:`check_nonfinite` is the counting form.
    """
    ok = np.isfinite(chunk).all(axis=1)
    if not drop and not ok.all():
        row = first_row + int(np.flatnonzero(~ok)[0])
        raise GaussAuditError(f"{source}: row {row} (counting from 0) holds NaN, inf or missing values. "
                              f"Pass {option_set('drop_nonfinite')} to leave such rows out.")
    return ok


def check_nonfinite(count: int, first: tuple[str, int] | None, drop: bool) -> None:
    """Fail on rows holding NaN, inf or missing values unless asked to drop them.

    ``first`` is ``(source, row)`` of the earliest such row, for the message.
    """
    if count and not drop:
        src, row = first
        rows = f"{count:,} rows hold" if count != 1 else "1 row holds"
        raise GaussAuditError(
            f"{src}: {rows} NaN, inf or missing values "
            f"(first: row {row}, counting from 0). Pass {option_set('drop_nonfinite')} to leave them out."
        )
