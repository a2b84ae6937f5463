"""Gaussian model files (``gaussaudit fit --out model.npz``): written
atomically, read without unpickling (``allow_pickle=False``), every problem a
GaussAuditError naming the file."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from gaussaudit.errors import GaussAuditError


def save_model(path: str | Path, arrays: dict[str, np.ndarray], overwrite: bool = False) -> None:
    from gaussaudit.io.writers import write_bytes_atomic

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue(), overwrite=overwrite)


def load_model(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a model file, as saved."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise GaussAuditError(f"{path}: is a .npy array, not a model file (make one with `gaussaudit fit`).")
        with data:
            return {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise GaussAuditError(f"{path}: no such model file.") from None
    except IsADirectoryError:
        raise GaussAuditError(f"{path}: is a folder, not a model file.") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise GaussAuditError(f"{path}: is not a readable model file ({exc}).") from None
