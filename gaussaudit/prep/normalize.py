"""Row norms and L2 normalisation, in float64."""
from __future__ import annotations

import numpy as np


def row_norms(x) -> np.ndarray:
    """Euclidean norm of each row, accumulated in float64.

    Examples
    --------
    >>> import numpy as np
    >>> row_norms(np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32))
    array([5., 0.])
    """
    x = np.asarray(x, dtype=np.float64)
    return np.sqrt(np.einsum("ij,ij->i", x, x))


def l2_normalize(x, norms=None) -> np.ndarray:
    """Rows scaled to unit length (the paper's u_i); all-zero rows stay zero.

    Examples
    --------
    >>> import numpy as np
    >>> l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    array([[0.6, 0.8],
           [0. , 0. ]])
    """
    x = np.asarray(x, dtype=np.float64)
    norms = row_norms(x) if norms is None else np.asarray(norms, dtype=np.float64)
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return x * scale[:, None]
