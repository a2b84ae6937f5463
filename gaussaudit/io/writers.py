"""Writers: atomic (a temp file renamed into place), and never over an existing
file unless the caller says ``overwrite=True``."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from gaussaudit.errors import GaussAuditError, option_set


def check_writable(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse to replace an existing file unless asked, and need a parent folder.

    A device or FIFO (``/dev/null``, ``/dev/stdout``, a pipe) is written into,
    not replaced, so it needs no ``overwrite``.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        os.stat(path)
    except PermissionError:
        raise GaussAuditError(f"{path}: cannot be written (permission denied on the folder {parent} or one "
                              "above it).") from None
    except OSError:
        pass  # not there yet: checked below
    if path.is_dir():
        raise GaussAuditError(f"{path}: is a folder; give a file name to write.")
    if path.exists() and not path.is_file():
        return path
    if path.exists() and not overwrite:
        raise GaussAuditError(f"{path}: already exists; pass {option_set('overwrite')} to replace it.")
    if not parent.is_dir():
        raise GaussAuditError(f"{path}: the folder {parent} does not exist.")
    if not os.access(parent, os.W_OK | os.X_OK):
        # said now, not after a long audit
        raise GaussAuditError(f"{path}: cannot be written (no permission to write in the folder {parent}).")
    return path


@contextmanager
def _atomic(path: str | os.PathLike, overwrite: bool):
    target = check_writable(path, overwrite)
    if target.exists() and not target.is_file():
        # A device or FIFO (/dev/null, /dev/stdout, a pipe): write into it.
        # Replacing it would turn /dev/null into a plain file for the whole machine.
        yield str(target)
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    os.close(fd)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str, overwrite: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    try:
        with _atomic(path, overwrite) as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
    except OSError as exc:
        raise GaussAuditError(f"{path}: cannot be written ({exc.strerror or exc}).") from None


def append_text(path: str | os.PathLike, text: str) -> None:
    """Append ``text`` to ``path`` (created if missing): for files a CI system
    collects from every step, such as ``$GITHUB_STEP_SUMMARY``."""
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise GaussAuditError(f"{path}: cannot be appended to ({exc.strerror or exc}).") from None


def write_columns_parquet(path: str | os.PathLike, parts, overwrite: bool = False) -> int:
    """Write ``parts`` (dicts of equal-length 1-D arrays, one dict a chunk) as
    one parquet file, a row group a chunk, atomically; returns the rows written.
    Memory stays that of one chunk whatever the total."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 0
    try:
        with _atomic(path, overwrite) as tmp:
            writer = None
            try:
                for part in parts:
                    table = pa.table({name: pa.array(values) for name, values in part.items()})
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table)
                    rows += table.num_rows
            finally:
                if writer is not None:
                    writer.close()
            if writer is None:
                raise GaussAuditError(f"{path}: there are no rows to write.")
    except OSError as exc:
        raise GaussAuditError(f"{path}: cannot be written ({exc.strerror or exc}).") from None
    return rows


def write_bytes_atomic(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> None:
    """Write ``data`` (a PNG, say) to ``path`` atomically."""
    try:
        with _atomic(path, overwrite) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(data)
    except OSError as exc:
        raise GaussAuditError(f"{path}: cannot be written ({exc.strerror or exc}).") from None


def check_folder_targets(folder: str | os.PathLike, file_names, overwrite: bool = False) -> list[Path]:
    """Targets ``folder/name`` for each name, checked before anything is written.

    The folder may be missing (it is created on writing) but must not be a file;
    an existing target is refused unless ``overwrite``, so a refusal leaves the
    folder as it was.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise GaussAuditError(f"{folder}: is a file; give a folder for the figures.")
    targets = [folder / name for name in file_names]
    for t in targets:
        if t.is_dir():
            raise GaussAuditError(f"{t}: is a folder; cannot write a file there.")
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise GaussAuditError(f"{existing[0]}: already exists{more}; pass {option_set('overwrite')} to replace it.")
    return targets


def write_files_atomic(folder: str | os.PathLike, files: dict[str, bytes], overwrite: bool = False) -> list[Path]:
    """Write ``{name: bytes}`` into ``folder`` (created if missing), each atomically."""
    targets = check_folder_targets(folder, list(files), overwrite)
    created = not Path(folder).exists()
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GaussAuditError(f"{folder}: cannot be created ({exc.strerror or exc}).") from None
    try:
        for target, data in zip(targets, files.values()):
            write_bytes_atomic(target, data, overwrite=overwrite)
    except BaseException:
        if created and not any(Path(folder).iterdir()):  # a full disk: leave no empty folder behind
            Path(folder).rmdir()
        raise
    return targets


def write_npy(path: str | os.PathLike, array, overwrite: bool = False) -> None:
    """Save a 2-D array as ``.npy`` atomically."""
    with _atomic(path, overwrite) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array))


def write_parquet(
    path: str | os.PathLike,
    array,
    *,
    layout: str = "fixed_size_list",
    column: str = "embedding",
    extra_columns: dict | None = None,
    row_group_size: int | None = None,
    overwrite: bool = False,
) -> None:
    """Save a 2-D array as parquet atomically.

    ``layout``: ``"fixed_size_list"`` or ``"list"`` (one embedding column named
    ``column``), or ``"wide"`` (one numeric column per feature, ``f0``, ``f1``…).
    ``extra_columns`` adds columns such as paths or ids beside the embeddings.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = np.asarray(array)
    n, d = x.shape
    if layout == "wide":
        cols = {f"f{j}": pa.array(x[:, j]) for j in range(d)}
    elif layout in ("fixed_size_list", "list"):
        values = pa.array(np.ascontiguousarray(x).ravel())
        if layout == "fixed_size_list":
            emb = pa.FixedSizeListArray.from_arrays(values, d)
        else:
            emb = pa.ListArray.from_arrays(pa.array(np.arange(0, n * d + 1, d, dtype=np.int32)), values)
        cols = {column: emb}
    else:
        raise ValueError(f"unknown parquet layout {layout!r}")
    for name, values in (extra_columns or {}).items():
        cols[name] = pa.array(values)
    table = pa.table(cols)
    with _atomic(path, overwrite) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size)
