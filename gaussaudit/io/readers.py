"""Readers: each shard knows its shape and dtype up front and yields float
arrays in row order, a chunk at a time, so no file is ever read whole."""
from __future__ import annotations

import contextlib
import zipfile
from typing import Iterator

import numpy as np

from gaussaudit.errors import GaussAuditError, option_name, option_set
from gaussaudit.io.extract_store import provenance_from_parquet, provenance_from_sidecar
from gaussaudit.io.remote import display_name, file_size, is_url, open_binary, remote_failure
from gaussaudit.io.torchfiles import is_foreign_file, load_tensors, refused_objects
from gaussaudit.io.validation import check_dtype, check_shape

#: Values per chunk: about 32 MB of float32, bounded whatever the file size.
CHUNK_VALUES = 1 << 23

NPZ_DEFAULT_KEYS = ("embeddings", "embedding", "emb", "features")


#: The file readers by suffix (:func:`reader`): supported suffixes, help texts
#: and error messages are derived from it.
READERS: dict[str, type] = {}


def reader(suffix: str, **options: str):
    """Register a Shard class as the reader of ``suffix`` files.

    ``options``: the dataset options it takes, each with what it picks ("an
    array inside .npz files", for the message when it is given and no such
    file is). Each is a keyword of its constructor, of
    :func:`~gaussaudit.io.sources.open_dataset` and a field of AuditConfig.
    A new format is a Shard subclass with this decorator: the suffix is then
    read in files, folders and globs, and named in help and errors."""
    def register(cls):
        cls.suffix, cls.options = suffix, options
        READERS[suffix] = cls
        return cls
    return register


def suffix_list(conjunction: str = "or") -> str:
    """The supported suffixes in words: ".npy, .npz, .parquet or .pt".

    Examples
    --------
    >>> suffix_list(), suffix_list("and")
    ('.npy, .npz, .parquet or .pt', '.npy, .npz, .parquet and .pt')
    """
    *head, last = READERS
    return f"{', '.join(head)} {conjunction} {last}" if head else last


def chunk_rows(dim: int) -> int:
    return max(1, CHUNK_VALUES // max(dim, 1))


class Shard:
    """One file (or in-memory array) of the dataset.

    Attributes: ``source`` (the name shown to users), ``n_rows``, ``dim``,
    ``dtype`` and ``layout`` (how features were found, e.g. "column 'emb'").
    """

    source: str
    n_rows: int
    dim: int
    dtype: np.dtype
    layout: str = "array"
    #: What ``gaussaudit extract`` recorded about the file (model, weights' SHA-256…), if it wrote it.
    provenance: dict | None = None
    #: The file suffix a registered reader reads, and the dataset options it takes (:func:`reader`).
    suffix: str = ""
    options: dict = {}

    def chunks(self) -> Iterator[np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError


class ArrayShard(Shard):
    """An array already in memory (the library API accepts these)."""

    def __init__(self, array, source: str = "<array>") -> None:
        try:
            arr = np.asarray(array)
        except Exception as exc:  # ragged nested lists and the like
            raise GaussAuditError(f"{source}: could not be read as an array ({exc}).") from None
        self.dtype = check_dtype(arr.dtype, source)
        self.n_rows, self.dim = check_shape(arr.shape, source)
        self.source, self._array = source, arr

    def chunks(self) -> Iterator[np.ndarray]:
        step = chunk_rows(self.dim)
        for start in range(0, self.n_rows, step):
            yield self._array[start : start + step]


def _damage(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "error":  # zlib.error and the like: name the module
        name = f"{type(exc).__module__}.error"
    return f"{name}: {str(exc)[:120]}" if str(exc) else name


def _read_npy_header(fh, source: str):
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            return fmt.read_array_header_1_0(fh, max_header_size=1 << 20)
        return fmt.read_array_header_2_0(fh, max_header_size=1 << 20)
    except OSError as exc:
        raise GaussAuditError(f"{source}: cannot be read ({exc.strerror or exc}).") from None
    except Exception as exc:  # numpy parses the header with tokenize/ast: a damaged byte raises anything
        raise GaussAuditError(f"{source}: is not a valid .npy array file (damaged header: {_damage(exc)}).") from None


@reader(".npy")
class NpyShard(Shard):
    """A ``.npy`` file, read a chunk of rows at a time.

    C-order files are read with plain reads into a fresh chunk: pages of a
    memory map would count toward the process's resident memory until the
    kernel reclaims them (3 GB for a 3 GB file). Fortran-order files, whose
    rows are not contiguous, are memory-mapped.
    """

    def __init__(self, path: str) -> None:
        self.source = display_name(str(path))
        try:
            with open_binary(path) as fh:
                shape, fortran, dtype = _read_npy_header(fh, self.source)
                offset = fh.tell()
        except OSError as exc:
            raise GaussAuditError(f"{self.source}: cannot be read ({exc.strerror or exc}).") from None
        self._fortran, self._offset = bool(fortran), offset
        self.dtype = check_dtype(dtype, self.source)
        self.n_rows, self.dim = check_shape(shape, self.source)
        expected = offset + self.n_rows * self.dim * self.dtype.itemsize
        actual = file_size(path)
        if actual < expected:
            raise GaussAuditError(
                f"{self.source}: is truncated: the header promises shape {tuple(shape)} "
                f"({expected} bytes) but the file has {actual} bytes."
            )
        self._path = path
        self.provenance = None if is_url(path) else provenance_from_sidecar(path)

    def chunks(self) -> Iterator[np.ndarray]:
        if self.n_rows == 0:
            return
        step = chunk_rows(self.dim)
        if self._fortran:
            if is_url(self._path):  # rows are not contiguous: the whole array, once
                with open_binary(self._path) as fh:
                    arr = np.load(fh, allow_pickle=False)
            else:
                arr = np.load(self._path, mmap_mode="r", allow_pickle=False)
            for start in range(0, self.n_rows, step):
                yield np.array(arr[start : start + step])
            return
        try:
            with open_binary(self._path) as fh:
                fh.seek(self._offset)
                for start in range(0, self.n_rows, step):
                    rows = min(step, self.n_rows - start)
                    chunk = np.empty((rows, self.dim), dtype=self.dtype)
                    if fh.readinto(memoryview(chunk).cast("B")) != chunk.nbytes:
                        raise GaussAuditError(f"{self.source}: ended early, at row {start} of {self.n_rows}.")
                    yield chunk
        except GaussAuditError:
            raise
        except OSError as exc:
            if is_url(self._path):
                raise remote_failure(self._path, exc) from None
            raise GaussAuditError(f"{self.source}: cannot be read ({exc.strerror or exc}).") from None
        except Exception as exc:  # a remote store's own errors (botocore, aiohttp)
            if not is_url(self._path):
                raise
            raise remote_failure(self._path, exc) from None


def choose_array(source: str, names: list[str], key: str | None, container: str) -> str:
    """Which of a file's named arrays holds the embeddings: ``key``, the only
    one, or the first of NPZ_DEFAULT_KEYS present; else an error listing them."""
    if not names:
        raise GaussAuditError(f"{source}: {container} holds no arrays.")
    listing = ", ".join(names)
    if key is not None:
        if key not in names:
            raise GaussAuditError(f"{source}: has no array named '{key}' (it has: {listing}).")
        return key
    if len(names) == 1:
        return names[0]
    for candidate in NPZ_DEFAULT_KEYS:
        if candidate in names:
            return candidate
    raise GaussAuditError(
        f"{source}: holds several arrays ({listing}); choose one with {option_set('key', 'NAME')}."
    )


@reader(".npz", key="an array inside .npz files")
class NpzShard(Shard):
    """One array of a ``.npz`` archive (compressed members cannot be mapped, so
    the member is decompressed once when its chunks are first asked for)."""

    def __init__(self, path: str, key: str | None = None) -> None:
        self.source = display_name(str(path))
        try:
            with open_binary(path) as raw, zipfile.ZipFile(raw) as zf:
                names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
                chosen = choose_array(self.source, names, key, "the .npz archive")
                with zf.open(chosen + ".npy") as fh:
                    shape, _, dtype = _read_npy_header(fh, f"{self.source}[{chosen}]")
        except GaussAuditError:
            raise
        except OSError as exc:
            raise GaussAuditError(f"{self.source}: cannot be read ({exc.strerror or exc}).") from None
        except Exception as exc:  # BadZipFile, zlib.error, an unsupported zip version or compression…
            raise GaussAuditError(f"{self.source}: is not a valid .npz archive ({_damage(exc)}).") from None
        self.key = chosen
        self.layout = f"array '{chosen}'"
        shown = f"{self.source}[{chosen}]"
        self.dtype = check_dtype(dtype, shown)
        self.n_rows, self.dim = check_shape(shape, shown)
        self._path = path

    def chunks(self) -> Iterator[np.ndarray]:
        if self.n_rows == 0:
            return
        try:
            with open_binary(self._path) as raw, np.load(raw, allow_pickle=False) as npz:
                arr = npz[self.key]
        except OSError as exc:
            raise GaussAuditError(f"{self.source}[{self.key}]: cannot be read ({exc.strerror or exc}).") from None
        except Exception as exc:  # damaged compressed data: zlib.error, BadZipFile (CRC), truncation…
            raise GaussAuditError(f"{self.source}[{self.key}]: is damaged and cannot be read ({_damage(exc)}).") from None
        step = chunk_rows(self.dim)
        for start in range(0, self.n_rows, step):
            yield arr[start : start + step]


def _is_parquet_damage(exc: BaseException) -> bool:
    """Whether pyarrow refused the bytes (as opposed to the storage failing to give them)."""
    import pyarrow as pa

    return isinstance(exc, (pa.ArrowInvalid, UnicodeDecodeError))


def _is_numeric_arrow(t) -> bool:
    import pyarrow as pa

    return pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_boolean(t)


def _is_float_arrow(t) -> bool:
    import pyarrow as pa

    return pa.types.is_floating(t)


def _names_text(names: list[str], limit: int = 6) -> str:
    """Column names for a message: all of a few, else the first and last.

    Examples
    --------
    >>> _names_text(["a", "b"]), _names_text([f"f{i}" for i in range(64)])
    ("'a', 'b'", "'f0', 'f1', 'f2' … 'f63'")
    """
    quoted = [f"'{n}'" for n in names]
    return ", ".join(quoted) if len(quoted) <= limit else f"{', '.join(quoted[:3])} … {quoted[-1]}"


def _is_list_arrow(t) -> bool:
    import pyarrow as pa

    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


@contextlib.contextmanager
def _open_parquet(path):
    """A ParquetFile of a local path or a URL, closed (with its remote file) on exit."""
    import pyarrow.parquet as pq

    with contextlib.ExitStack() as stack:
        source = stack.enter_context(open_binary(path)) if is_url(path) else path
        # pre_buffer (pyarrow's default) caches every column chunk read for as long
        # as the file object lives: with 20 shards open that held the whole 4 GB
        # input in memory. A 1 MB buffered stream reads as fast from local disks.
        yield stack.enter_context(pq.ParquetFile(source, pre_buffer=False, buffer_size=1 << 20))


@reader(".parquet", column="columns of parquet files", columns="columns of parquet files",
        exclude="columns of parquet files")
class ParquetShard(Shard):
    """A parquet file: one list / fixed-size-list column of embeddings, found
    automatically or named with ``column``, or else one feature per column
    ("wide" layout): every floating-point column (integer, boolean and text
    columns are ids, labels and captions, left out and named in ``layout``),
    less ``exclude``, or exactly ``columns``. Read a record batch at a time."""

    def __init__(self, path: str, column: str | None = None, columns: tuple[str, ...] | None = None,
                 exclude: tuple[str, ...] = ()) -> None:
        import pyarrow as pa

        self.source = display_name(str(path))
        self._path = path
        try:
            # Only the footer is kept: a shard holds no open file, so it pickles (to a cluster worker) as it is.
            with _open_parquet(path) as parquet:
                schema, self.n_rows = parquet.schema_arrow, int(parquet.metadata.num_rows)
        except GaussAuditError:
            raise
        except Exception as exc:  # ArrowException, OSError, a damaged footer's UnicodeDecodeError…
            if is_url(path) and not _is_parquet_damage(exc):
                raise remote_failure(str(path), exc) from None
            raise GaussAuditError(f"{self.source}: is not a readable parquet file ({_damage(exc)}).") from None
        self.provenance = provenance_from_parquet(schema.metadata)
        fields = {f.name: f.type for f in schema}
        list_cols = [n for n, t in fields.items() if _is_list_arrow(t)]
        numeric_lists = [n for n in list_cols if _is_numeric_arrow(fields[n].value_type)]

        for option, names in (("columns", columns or ()), ("exclude", exclude)):
            missing = [n for n in names if n not in fields]
            if missing:
                raise GaussAuditError(f"{self.source}: {option_name(option)} names {_names_text(missing)}, not a column here "
                                      f"(it has: {', '.join(fields)}).")
        if columns is not None or exclude:
            column_lists = [n for n in (columns or ()) if _is_list_arrow(fields[n])]
            if column_lists:
                raise GaussAuditError(f"{self.source}: {_names_text(column_lists)} is a list column; "
                                      f"{option_name('columns')} and {option_name('exclude')} choose one-value-per-row "
                                      f"feature columns. Name a list column with {option_set('column', 'NAME')}.")
            list_cols = numeric_lists = []  # the user asked for the wide layout
        if column is not None:
            if column not in fields:
                raise GaussAuditError(f"{self.source}: has no column '{column}' (it has: {', '.join(fields)}).")
            t = fields[column]
            if not _is_list_arrow(t):
                raise GaussAuditError(
                    f"{self.source}: column '{column}' holds one {t} per row, not an embedding; "
                    f"{option_name('column')} names a list column. Leave {option_name('column')} out to use every "
                    "numeric column as a feature."
                )
            if not _is_numeric_arrow(t.value_type):
                raise GaussAuditError(f"{self.source}: column '{column}' holds lists of {t.value_type}, not numbers.")
            self._list_column = column
        elif len(numeric_lists) == 1:
            self._list_column = numeric_lists[0]
        elif len(numeric_lists) > 1:
            raise GaussAuditError(
                f"{self.source}: has several embedding columns ({', '.join(numeric_lists)}); choose one with "
                f"{option_set('column', 'NAME')}."
            )
        else:
            self._list_column = None

        if self._list_column is not None:
            t = fields[self._list_column]
            self.dtype = check_dtype(t.value_type.to_pandas_dtype(), f"{self.source}:{self._list_column}")
            self.layout = f"column '{self._list_column}'"
            self._columns = [self._list_column]
            self.dim = t.list_size if pa.types.is_fixed_size_list(t) else self._first_list_length()
        else:
            self._columns = self._wide_columns(fields, columns, exclude)
            self.dim = len(self._columns)
            self.dtype = np.result_type(*[fields[n].to_pandas_dtype() for n in self._columns])
            left_out = [n for n in fields if n not in self._columns and n not in exclude]
            kind = "columns" if columns is not None else "float columns"
            self.layout = (f"{len(self._columns)} {kind} {_names_text(self._columns)}" if self.dim > 1
                           else f"column '{self._columns[0]}'")
            if columns is not None:
                self.layout += f" (--columns; {len(left_out)} other columns unused)" if left_out else " (--columns)"
            elif left_out:
                self.layout += f" (not features: {', '.join(f'{n} {fields[n]}' for n in left_out[:6])}" + (
                    " …)" if len(left_out) > 6 else ")")
            if exclude:
                self.layout += f" (excluded: {_names_text(list(exclude))})"
        if self.dim == 0:
            raise GaussAuditError(f"{self.source}: column '{self._list_column}' holds empty lists; no features to test.")

    def _wide_columns(self, fields: dict, columns: tuple[str, ...] | None, exclude: tuple[str, ...]) -> list[str]:
        """The feature columns of the wide layout (see the class docstring)."""
        if columns is not None:
            not_numbers = [n for n in columns if not _is_numeric_arrow(fields[n])]
            if not_numbers:
                named = ', '.join(f'{n} ({fields[n]})' for n in not_numbers)
                raise GaussAuditError(f"{self.source}: {option_name('columns')} names {named}, not numbers.")
            return [n for n in fields if n in columns]  # file order, as in every other layout
        chosen = [n for n, t in fields.items() if _is_float_arrow(t) and n not in exclude]
        if not chosen:
            numeric = [n for n, t in fields.items() if _is_numeric_arrow(t) and n not in exclude]
            what = f" (columns: {', '.join(f'{n}: {t}' for n, t in fields.items())})" if fields else ""
            if numeric:
                raise GaussAuditError(
                    f"{self.source}: has no floating-point column{what}. Integer and boolean columns are ids or "
                    f"labels unless you say otherwise: to test them as features, pass "
                    f"{option_set('columns', ','.join(numeric[:3]) + (',…' if len(numeric) > 3 else ''))}.")
            raise GaussAuditError(f"{self.source}: has no numeric column{what}; nothing to audit.")
        return chosen

    def _first_list_length(self) -> int:
        for arr in self._batches(batch_size=64):
            valid = arr.is_valid().to_numpy(zero_copy_only=False)
            if valid.any():
                first = int(np.flatnonzero(valid)[0])
                return len(arr[first].values)
        if self.n_rows == 0:
            return 1  # no rows: the dimension never matters
        raise GaussAuditError(f"{self.source}: every row of column '{self._list_column}' is null.")

    def _batches(self, batch_size: int):

        # A reader of its own per pass, closed at the end: nothing a pass read
        # stays referenced by the shard (a dataset holds every shard at once).
        try:
            with _open_parquet(self._path) as reader:
                for batch in reader.iter_batches(batch_size=batch_size, columns=self._columns):
                    yield batch.column(0) if self._list_column is not None else batch
        except GaussAuditError:
            raise
        except Exception as exc:  # damaged pages decode into any error
            raise GaussAuditError(f"{self.source}: is not a readable parquet file ({_damage(exc)}).") from None

    def chunks(self) -> Iterator[np.ndarray]:
        start = 0
        for batch in self._batches(batch_size=chunk_rows(self.dim)):
            if self._list_column is None:
                yield self._wide_to_numpy(batch)
            else:
                yield self._list_to_numpy(batch, start)
            start += len(batch)

    def _wide_to_numpy(self, batch) -> np.ndarray:
        out = np.empty((batch.num_rows, self.dim), dtype=self.dtype if self.dtype.kind == "f" else np.float64)
        for j in range(batch.num_columns):
            col = batch.column(j)
            values = col.to_numpy(zero_copy_only=False)
            if col.null_count:
                values = np.where(col.is_valid().to_numpy(zero_copy_only=False), values, np.nan)
            out[:, j] = values
        return out

    def _list_to_numpy(self, arr, start: int) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        n = len(arr)
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        if not pa.types.is_fixed_size_list(arr.type):
            lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
            ragged = np.flatnonzero(valid & (lengths != self.dim))
            if ragged.size:
                row = int(ragged[0])
                raise GaussAuditError(
                    f"{self.source}: column '{self._list_column}' is ragged: row {start + row} has "
                    f"{int(lengths[row])} values where the first row has {self.dim}."
                )
        dense = arr if valid.all() else arr.filter(pa.array(valid))
        flat = dense.flatten()
        values = flat.to_numpy(zero_copy_only=False)
        if flat.null_count:
            values = np.where(flat.is_valid().to_numpy(zero_copy_only=False), values, np.nan)
        values = values.reshape(-1, self.dim)
        if valid.all():
            return values
        # Missing embeddings become NaN rows: counted and reported like NaN values.
        out = np.full((n, self.dim), np.nan, dtype=np.float64)
        out[valid] = values
        return out


@reader(".pt", key="a tensor of a dict in .pt files")
class TorchShard(ArrayShard):
    """A tensor saved with ``torch.save`` (``model.encode(..., convert_to_tensor=True)``
    of sentence-transformers, say), or a dict of tensors (one chosen as in
    ``.npz`` files). Loaded with ``weights_only=True``, which never runs pickled
    code, and memory-mapped. Needs torch (the extract extra)."""

    def __init__(self, path: str, key: str | None = None) -> None:
        source = str(path)
        if is_url(path):
            raise GaussAuditError(f"{display_name(source)}: .pt files are read from local disk only (torch.load "
                                  "memory-maps them); copy it here, or store the embeddings as .npy or parquet.")
        try:
            import torch
        except ImportError:
            raise GaussAuditError(f"{source}: reading .pt files needs torch, which is not installed: "
                                  "pip install 'gaussaudit[extract]' (or save the embeddings with np.save).") from None
        try:
            loaded = load_tensors(path)
        except Exception as exc:  # UnpicklingError, RuntimeError, EOFError…
            what = refused_objects(path, exc)
            if what is not None:
                raise GaussAuditError(
                    f"{source}: holds Python objects beyond tensors{what}, and unpickling them could run code, so it "
                    "was not loaded. Save the embeddings tensor alone: torch.save(embeddings, 'emb.pt').") from None
            reason = "damaged or foreign data" if is_foreign_file(exc) else _damage(exc)
            raise GaussAuditError(f"{source}: is not a file torch.save wrote, or a damaged one ({reason}).") from None
        layout = "tensor"
        if isinstance(loaded, dict):
            tensors = {str(k): v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
            chosen = choose_array(source, list(tensors), key, "the saved dict")
            loaded, layout = tensors[chosen], f"tensor '{chosen}'"
        elif key is not None:
            raise GaussAuditError(f"{source}: holds one tensor, not a dict; {option_name('key')} picks a tensor "
                                  "of a dict.")
        if not isinstance(loaded, torch.Tensor):
            raise GaussAuditError(f"{source}: holds a {type(loaded).__name__}, not a tensor of embeddings.")
        if loaded.dtype == torch.bfloat16:  # numpy has no bfloat16; float32 holds it exactly
            loaded = loaded.float()
        try:
            array = loaded.numpy()
        except TypeError:  # float8 and other types numpy lacks
            raise GaussAuditError(f"{source}: holds a tensor of {loaded.dtype}; expected real numbers "
                                  "(float16/32/64).") from None
        super().__init__(array, source=source)
        self.layout = layout
