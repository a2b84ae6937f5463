"""Per-feature normality statistics on a torch device (``--device cuda``).

The same definitions as :func:`gaussaudit.stats.normality.feature_normality`,
computed with torch so a GPU can do the sort and the per-value work. Each block
of features is sorted in its input dtype (float32 stays float32), and every
number after the sort - the moments and Anderson-Darling's A² - is float64, with
the formulas of the numpy kernel. Only the per-feature moments and A² come back
to the host; p-values and the D'Agostino-Pearson statistic are then built by the
numpy helpers of :mod:`gaussaudit.stats.normality`, so they are the same code.

torch is imported only when a function here runs: ``import gaussaudit`` never
imports it.
"""
from __future__ import annotations

import warnings

import numpy as np

from gaussaudit.errors import GaussAuditError, option_name, option_set
from gaussaudit.stats.normality import _FAR_TAIL as _FAR_TAIL_NP
from gaussaudit.stats.normality import _SQRT1_2 as _SQRT1_2_NP
from gaussaudit.stats.normality import (
    DP_MIN_SAMPLES,
    FeatureNormality,
    _check_n,
    feature_normality_from_kernel,
    is_constant,
)

# The numpy kernel's constants as Python floats, so they never meet a tensor as numpy scalars.
_FAR_TAIL = float(_FAR_TAIL_NP)
_SQRT1_2 = float(_SQRT1_2_NP)

#: Values (features × samples) per block sent to the device by default: 2^26,
#: 256 MiB as float32 and 512 MiB as float64. The float64 temporaries of one
#: block peak at about 3 GiB of device memory, whatever the number of features.
DEFAULT_BLOCK_VALUES = 1 << 26

_CHOICES = "auto, cpu, cuda or cuda:N"


def _import_torch(requested: str):
    try:
        import torch
    except ImportError:
        raise GaussAuditError(
            f"{option_set('device', requested)} needs torch, which is not installed: pip install torch (the build for your "
            "CUDA version: https://pytorch.org/get-started/locally/)."
        ) from None
    return torch


def resolve_device(name: str) -> str:
    """Check a ``--device`` name and return the torch device to use: the one
    resolver of the scan's tests and of ``extract`` (which wraps it in a
    ``torch.device``).

    Parameters
    ----------
    name : {"auto", "cpu", "cuda", "cuda:N"}
        ``auto`` means ``cuda`` when torch sees a GPU, else ``cpu`` (also when
        torch is not installed). Case and surrounding spaces are ignored.

    Returns
    -------
    str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises
    ------
    GaussAuditError
        For another name; for ``cuda``/``cuda:N`` when torch is missing, when it
        sees no GPU, or when there is no GPU number N.

    Examples
    --------
    >>> resolve_device("CPU")
    'cpu'
    """
    requested = str(name).strip().lower()
    if requested == "cpu":
        return "cpu"
    if requested == "auto":
        try:
            import torch
        except ImportError:
            return "cpu"
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" or (requested.startswith("cuda:") and requested[5:].isdigit()):
        torch = _import_torch(requested)
        if not torch.cuda.is_available():
            built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
            raise GaussAuditError(
                f"{option_set('device', requested)}: CUDA is not available here (torch {torch.__version__}, {built}; "
                f"torch.cuda.is_available() is False: no usable GPU or driver). Use {option_set('device', 'cpu')}, "
                f"or {option_set('device', 'auto')} to take a GPU when there is one."
            )
        if requested != "cuda":
            index = int(requested[5:])
            count = torch.cuda.device_count()
            if index >= count:
                raise GaussAuditError(
                    f"{option_set('device', requested)}: torch sees {count} CUDA device(s), numbered from 0 to {count - 1}."
                )
            return f"cuda:{index}"
        return "cuda"
    raise GaussAuditError(f"{option_name('device')} must be {_CHOICES}; got '{name}'.")


def _torch_kernel(torch, y):
    """Moments and A² of each row of ``y``: a sorted (b, n) float64 tensor.

    The formulas of ``_row_moments`` and ``_ad_row`` in
    :mod:`gaussaudit.stats.normality`, vectorised over the whole block (a GPU
    wants one large launch, not a loop over rows).
    """
    n = y.shape[1]
    mean = y.mean(dim=1)
    centred = y - mean[:, None]
    sq = centred * centred
    m2 = sq.mean(dim=1)
    m3 = (sq * centred).sum(dim=1) / n
    m4 = (sq * sq).sum(dim=1) / n
    del sq
    constant = is_constant(mean, m2)
    std = torch.sqrt(m2 * (n / (n - 1.0)))  # ddof=1, as scipy.stats.anderson
    safe_std = torch.where(constant, torch.ones_like(std), std)

    w = centred.div_(safe_std[:, None])  # (y - mean) / std, in centred's memory
    abs_w = w.abs()
    tail = torch.special.erfc(abs_w * _SQRT1_2).mul_(0.5)  # Φ(-|w|)
    log_small = torch.log(tail)  # log Φ(-|w|); -inf where the tail underflows
    # Past |w| = 30 use log_ndtr's asymptotic series, as the numpy kernel does.
    far = abs_w > _FAR_TAIL
    if bool(far.any()):
        log_small[far] = torch.special.log_ndtr(-abs_w[far])
    del abs_w, far
    log_big = tail.neg_().log1p_()  # log Φ(|w|), in tail's memory
    positive = w >= 0
    del w, centred
    log_sf = torch.where(positive, log_small, log_big)  # log Φ(-w)
    log_odds = log_big.sub_(log_small)  # log Φ(|w|) - log Φ(-|w|) >= 0
    del log_small
    log_odds = torch.where(positive, log_odds, log_odds.neg())  # log Φ(w) - log Φ(-w)
    weights = (2.0 * torch.arange(1, n + 1, dtype=torch.float64, device=y.device) - 1.0) / n
    # Σ_i c_i log_odds_i as a row sum rather than numpy's matrix-vector product:
    # a row's sum does not depend on how many rows share the block (a matmul's
    # kernel does), so A² does not change with max_block_values.
    a2 = -n - (2.0 * log_sf.sum(dim=1) + log_odds.mul_(weights).sum(dim=1))
    a2 = torch.where(constant, torch.full_like(a2, float("nan")), a2)
    return {"mean": mean, "m2": m2, "m3": m3, "m4": m4, "constant": constant, "std": std, "a2": a2}


def feature_normality_torch(rows, device: str, *, max_block_values: int | None = None) -> FeatureNormality:
    """Anderson-Darling and D'Agostino-Pearson on every feature, on a torch device.

    The same result, with the same definitions, as
    ``feature_normality(rows, axis=1)``. Only the order of the sums differs, so
    results agree to rounding: about 1e-13 relative for the moments and
    D'Agostino-Pearson, and about n·1e-15 absolute for A² (a sum of n terms of
    order one that cancels down to a number of order one).

    Parameters
    ----------
    rows : ndarray, shape (d, n)
        Feature-major samples: one feature per row, ``n >= 20`` samples along
        axis 1. float32 is sorted as float32 (half the device memory and
        transfer); any other dtype is converted to float64. Everything after the
        sort is float64.
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``, checked by
        :func:`resolve_device`.
    max_block_values : int, optional
        At most this many values (features × samples, at least one feature) go
        to the device at a time; default :data:`DEFAULT_BLOCK_VALUES` (2^26).
        Results do not depend on it beyond rounding (torch's CPU reductions may
        split a long row over threads when a block holds few rows).

    Returns
    -------
    FeatureNormality

    Raises
    ------
    GaussAuditError
        When ``n < 20``, ``rows`` is not 2-D, or the device is unusable (see
        :func:`resolve_device`).

    Examples
    --------
    >>> import numpy as np
    >>> from gaussaudit.stats import feature_normality
    >>> from gaussaudit.stats.gpu import feature_normality_torch
    >>> rows = np.random.default_rng(0).standard_normal((4, 1000)).astype(np.float32)
    >>> rows[0] = 1.5  # a constant feature
    >>> res = feature_normality_torch(rows, "cpu")
    >>> res.constant.tolist()
    [True, False, False, False]
    >>> ref = feature_normality(rows, axis=1)
    >>> bool(np.allclose(res.ad.statistic[1:], ref.ad.statistic[1:], rtol=1e-10, atol=0))
    True
    """
    rows = np.asarray(rows)
    if rows.ndim != 2:
        raise GaussAuditError(f"expected a 2-D (features, samples) array; got shape {rows.shape}")
    if rows.dtype not in (np.float32, np.float64):
        rows = rows.astype(np.float64)
    d, n = rows.shape
    _check_n(n, DP_MIN_SAMPLES, "The normality tests")
    target = resolve_device(device)
    torch = _import_torch(device)
    dev = torch.device(target)

    limit = DEFAULT_BLOCK_VALUES if max_block_values is None else int(max_block_values)
    block = max(1, limit // n)
    keys = ("mean", "m2", "m3", "m4", "constant", "std", "a2")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    with torch.no_grad():
        for start in range(0, d, block):
            with warnings.catch_warnings():
                # A read-only input (a memory map) makes torch warn that writing to the
                # tensor is undefined; nothing here writes to it.
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                host = torch.from_numpy(np.ascontiguousarray(rows[start : start + block]))
            x = host.to(dev)
            y = torch.sort(x, dim=1).values.to(torch.float64)  # sort in the input dtype
            del x
            out = _torch_kernel(torch, y)
            del y
            for k in keys:
                parts[k].append(out[k].cpu().numpy())
    if d == 0:
        out = {k: np.empty(0, dtype=bool if k == "constant" else np.float64) for k in keys}
    else:
        out = {k: np.concatenate(v) for k, v in parts.items()}
    return feature_normality_from_kernel(out, n)
