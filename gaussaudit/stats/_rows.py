"""One check of the row arrays the two-set statistics take (drift, pairs), so
their errors read alike."""
from __future__ import annotations

import numpy as np

from gaussaudit.errors import GaussAuditError


def checked_rows(x, name: str, needs: str = "a covariance needs at least 2 rows", what: str = "rows",
                 copy: bool = False) -> np.ndarray:
    """``x`` as a finite real float64 (n, d) array with n >= 2 and d >= 1, or a
    GaussAuditError naming ``name`` (``needs`` says why two rows, ``what`` what
    to drop).

    Examples
    --------
    >>> checked_rows([[1, 2], [3, 4]], "x").dtype
    dtype('float64')
    """
    if np.iscomplexobj(x):
        raise GaussAuditError(f"{name} must hold real numbers; got complex values.")
    try:
        x = (np.array if copy else np.asarray)(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise GaussAuditError(f"{name} must be an array of numbers (rows = samples, columns = dimensions).") from None
    if x.ndim != 2:
        raise GaussAuditError(f"{name} must be a 2-D array (rows = samples, columns = dimensions); got shape {x.shape}.")
    n, d = x.shape
    if d < 1:
        raise GaussAuditError(f"{name} has no columns; it needs at least one dimension.")
    if n < 2:
        raise GaussAuditError(f"{name} has {n} row(s); {needs}.")
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.argwhere(~finite)
        row, col = bad[0]
        raise GaussAuditError(f"{name} has {len(bad)} non-finite value(s) (NaN or ±inf), the first in row {row}, "
                              f"column {col}; drop or impute those {what} first.")
    return x
