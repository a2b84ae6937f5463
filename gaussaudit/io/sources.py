"""Turn what the user typed (files, folders, globs) into one dataset of shards."""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from gaussaudit.errors import GaussAuditError, option_name
from gaussaudit.io.layouts import check_layout_options, clip_retrieval_folder, select_split
from gaussaudit.io.readers import READERS, ArrayShard, Shard, suffix_list
from gaussaudit.io.remote import RemotePath, display_name, is_url
from gaussaudit.io.validation import check_row_count

#: The suffixes of the readers registered at import (io.readers.READERS).
SUPPORTED_SUFFIXES = tuple(READERS)
_GLOB_CHARS = re.compile(r"[*?\[]")


def source_label(source, default: str = "in-memory data") -> str:
    """An input as its user gave it, for reports and messages: a path, paths
    joined by commas, or ``default`` for data in memory.

    Examples
    --------
    >>> source_label(["a.npy", "b.npy"]), source_label([[1.0, 2.0]], "A")
    ('a.npy, b.npy', 'A')
    """
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (list, tuple)) and source and all(isinstance(s, (str, os.PathLike)) for s in source):
        return ", ".join(map(str, source))
    return default


def is_glob(text: str) -> bool:
    """Whether a path argument is a pattern to expand (it has * ? or [)."""
    return bool(_GLOB_CHARS.search(text))


def is_ignored_name(name: str) -> bool:
    """Hidden and bookkeeping names (.crc, _SUCCESS) are never data."""
    return name.startswith((".", "_"))


def natural_key(text: str):
    """Sort key that orders digits by value: shard_2 before shard_10."""
    return [(0, int(tok), "") if tok.isdigit() else (1, 0, tok) for tok in re.split(r"(\d+)", text) if tok]


def is_data_file(path: Path) -> bool:
    """The one "is this data?" rule: a registered reader's suffix, not a hidden
    or bookkeeping name."""
    return path.suffix.lower() in READERS and not is_ignored_name(path.name)


def walk_files(root: Path, wanted) -> list[Path]:
    """Files under ``root`` for which ``wanted(name)`` holds: the one folder walk
    of scan, compare, track and extract.

    Hidden and ``_``-prefixed folders (``.ipynb_checkpoints/``, ``_temporary/``)
    are bookkeeping, never data, and are not entered. A wanted name that is not
    a regular file (a FIFO or device would hang the read, a broken link has no
    data) and a subfolder that cannot be read are errors: never silently fewer
    rows.
    """
    def fail(exc: OSError) -> None:
        raise GaussAuditError(f"{exc.filename}: cannot be read ({exc.strerror or exc}); the folder would be "
                              "read only in part.")

    found = []
    for folder, dirs, names in os.walk(root, onerror=fail, followlinks=True):
        dirs[:] = [d for d in dirs if not is_ignored_name(d)]
        for name in names:
            path = Path(folder) / name
            if not wanted(name):
                continue
            if not path.is_file():
                what = ("a symbolic link that leads nowhere" if path.is_symlink() and not path.exists()
                        else "not a regular file (a FIFO, device or socket)")
                raise GaussAuditError(f"{path}: is {what}; move it out of {root} or fix it.")
            found.append(path)
    return found


def _folder_files(folder: Path | RemotePath) -> list[Path]:
    def wanted(name: str) -> bool:
        return is_data_file(Path(name))

    found = folder.walk_files(wanted) if isinstance(folder, RemotePath) else walk_files(folder, wanted)
    if not found:
        raise GaussAuditError(
            f"{display_name(str(folder))}: the folder holds no {', '.join(READERS)} files."
        )
    return sorted(found, key=lambda p: natural_key(p.relative_to(folder).as_posix()))


def resolve_paths(paths: Sequence[str | os.PathLike], *, only: str | None = None, split: str | None = None,
                  notes: list[str] | None = None) -> list[Path]:
    """Expand folders (recursively) and globs into a list of files, in order.

    Folder and glob matches are sorted naturally (numbers by value); the order
    the user gave between arguments is kept. A file named twice is an error.
    Folders other tools write are read as they mean (:mod:`gaussaudit.io.layouts`):
    a clip-retrieval output as its ``only`` embedding set, a Hugging Face
    export as its ``split`` (every split when None); ``notes`` hears what was
    recognised.
    """
    notes = [] if notes is None else notes
    check_layout_options(only, split)
    recognised = folders = False
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise GaussAuditError(f"no input given: name at least one {suffix_list()} file, folder or glob.")
    files: list[Path] = []
    for raw in paths:
        text = str(raw) if isinstance(raw, RemotePath) else os.fspath(raw)
        if is_url(text):
            found, is_folder = _remote_files(RemotePath(text), text, only, split, notes)
            recognised |= is_folder == "recognised"
            folders |= bool(is_folder)
            files.extend(found)
            continue
        path = Path(text)
        try:
            os.stat(path)
        except PermissionError:
            raise GaussAuditError(f"{text}: cannot be reached (permission denied on a folder on its way).") from None
        except OSError:
            pass  # missing, a broken link or a glob: told apart below
        if path.is_dir():
            folders = True
            embeddings = clip_retrieval_folder(path, only, notes)
            recognised |= embeddings is not None
            found = _folder_files(embeddings or path)
            files.extend(select_split(path, found, split, notes) if embeddings is None else found)
        elif path.exists():
            if not path.is_file():
                raise GaussAuditError(f"{text}: is not a regular file (a FIFO, device or socket); gaussaudit reads "
                                      f"{suffix_list('and')} files.")
            files.append(path)
        elif os.path.islink(text):
            raise GaussAuditError(f"{text}: is a symbolic link that leads nowhere (its target is missing, or the "
                                  "links form a loop).")
        elif is_glob(text):
            matches = [Path(m) for m in glob.glob(text, recursive=True)]
            matches = [m for m in matches if m.is_file() and is_data_file(m)]
            if not matches:
                raise GaussAuditError(f"{text}: the pattern matches no {', '.join(READERS)} files.")
            files.extend(sorted(matches, key=lambda p: natural_key(p.as_posix())))
        else:
            raise GaussAuditError(f"{text}: no such file or folder.")
    if only is not None and not recognised:
        raise GaussAuditError(f"{option_name('only')} picks an embedding set of a clip-retrieval output folder "
                              "(img_emb/, text_emb/), and no such folder was given.")
    if split is not None and not folders:
        raise GaussAuditError(f"{option_name('split')} picks a split of a Hugging Face export folder; name the folder "
                              "(its files or a glob of them are read as given).")
    seen: set[str] = set()
    for f in files:
        real = str(f) if isinstance(f, RemotePath) else os.path.realpath(f)
        if real in seen:
            raise GaussAuditError(f"{display_name(str(f))}: is named twice; each file may be part of the dataset once.")
        seen.add(real)
    return files


def _remote_files(path: RemotePath, text: str, only, split, notes: list[str]):
    """A URL's files, by the local rules (folders recursively, layouts, globs),
    and whether it was a folder ("recognised" for a clip-retrieval one)."""
    if is_glob(text.split("://", 1)[1]):
        matches = sorted((m for m in path.glob() if is_data_file(Path(m.name))), key=lambda p: natural_key(str(p)))
        if not matches:
            raise GaussAuditError(f"{display_name(text)}: the pattern matches no {', '.join(READERS)} files.")
        return matches, False
    if path.is_dir():
        embeddings = clip_retrieval_folder(path, only, notes)
        found = _folder_files(embeddings or path)
        if embeddings is not None:
            return found, "recognised"
        return select_split(path, found, split, notes), True
    if not path.exists():
        raise GaussAuditError(f"{display_name(text)}: no such file or folder.")
    return [path], False


def _open_shard(path: Path, options: dict) -> Shard:
    """The registered reader of ``path``'s suffix, given the options it takes
    (those not given keep the reader's defaults)."""
    if not isinstance(path, RemotePath) and not os.access(path, os.R_OK):
        raise GaussAuditError(f"{path}: cannot be read (permission denied).")
    read = READERS.get(path.suffix.lower())
    if read is None:
        raise GaussAuditError(
            f"{path}: unknown file type '{path.suffix or '(none)'}'; gaussaudit reads {', '.join(READERS)}."
        )
    return read(str(path), **{name: value for name, value in options.items() if name in read.options})


#: Remote headers read at once: each is a round trip of tens of milliseconds.
REMOTE_HEADER_THREADS = 16


def _open_shards(files: list, options: dict) -> list[Shard]:
    """Every file's shard, in order; remote headers are fetched concurrently."""
    if not any(isinstance(f, RemotePath) for f in files) or len(files) == 1:
        return [_open_shard(f, options) for f in files]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(REMOTE_HEADER_THREADS, len(files))) as pool:
        return list(pool.map(lambda f: _open_shard(f, options), files))


@dataclass
class Dataset:
    """Shards read in order as one set of rows with a common dimension."""

    shards: list[Shard]
    #: What was recognised in the inputs' layout (a clip-retrieval folder, Hugging Face splits).
    notes: tuple[str, ...] = ()

    @property
    def n_rows(self) -> int:
        return sum(s.n_rows for s in self.shards)

    @property
    def dim(self) -> int:
        return self.shards[0].dim

    @property
    def paths(self) -> list[str]:
        return [s.source for s in self.shards]

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(*[s.dtype for s in self.shards])

    @property
    def layouts(self) -> list[str]:
        return sorted({s.layout for s in self.shards})

    @property
    def provenance(self) -> list[dict]:
        """Each distinct extract record of the shards, in shard order (one for a
        single extract output; none for files extract did not write)."""
        seen: list[dict] = []
        for shard in self.shards:
            if shard.provenance is not None and shard.provenance not in seen:
                seen.append(shard.provenance)
        return seen

    def chunks(self) -> Iterator[tuple[Shard, int, int, np.ndarray]]:
        """Yield ``(shard, row_in_shard, row_in_dataset, chunk)`` in row order."""
        offset = 0
        for shard in self.shards:
            local = 0
            for chunk in shard.chunks():
                yield shard, local, offset + local, chunk
                local += len(chunk)
            offset += shard.n_rows


#: Options of the folder layouts (io.layouts), beside those of the readers.
LAYOUT_OPTIONS = ("only", "split")


def dataset_options() -> tuple[str, ...]:
    """Every option a registered reader takes (``key``, ``column``…), and the layouts' (``only``, ``split``)."""
    return tuple(dict.fromkeys([name for read in READERS.values() for name in read.options] + list(LAYOUT_OPTIONS)))


def open_dataset(source, **options) -> Dataset:
    """Open files, folders, globs or an in-memory 2-D array as one dataset.

    ``options`` go to the readers that declare them (:func:`dataset_options`):
    ``key`` picks the array of ``.npz`` files, ``column`` the parquet list
    column of embeddings, ``columns`` and ``exclude`` the feature columns of
    wide parquet files. An option given for a format none of the files has is
    an error.

    Every shard's header is read and checked before any data: a wrong dtype,
    shape or dimension mismatch fails fast, naming the file.
    """
    unknown = sorted(set(options) - set(dataset_options()))
    if unknown:
        raise GaussAuditError(f"unknown dataset option {', '.join(unknown)}; the readers take "
                              f"{', '.join(dataset_options())}.")
    given = {name: value for name, value in options.items() if value is not None and not (
        isinstance(value, (tuple, list)) and len(value) == 0)}
    in_memory = isinstance(source, (list, tuple)) and source and not isinstance(source[0], (str, os.PathLike))
    notes: list[str] = []
    if isinstance(source, np.ndarray) or in_memory:
        shards: list[Shard] = [ArrayShard(source)]
    else:
        files = resolve_paths(source, only=given.pop("only", None), split=given.pop("split", None), notes=notes)
        if "column" in given and ("columns" in given or "exclude" in given):
            raise GaussAuditError(f"{option_name('column')} names one list column of embeddings; {option_name('columns')} "
                                  f"and {option_name('exclude')} choose one-value-per-row feature columns: give one "
                                  "or the other.")
        shards = _open_shards(files, given)
        suffixes = {f.suffix.lower() for f in files}
        for name in given:
            readers = [(suffix, read.options[name]) for suffix, read in READERS.items() if name in read.options]
            if not any(suffix in suffixes for suffix, _ in readers):
                raise GaussAuditError(f"{option_name(name)} picks {' or '.join(what for _, what in readers)}, and no "
                                      f"{' or '.join(suffix for suffix, _ in readers)} file was given.")
    first = shards[0]
    for s in shards[1:]:
        if s.dim != first.dim:
            raise GaussAuditError(
                f"{s.source}: has {s.dim} features but {first.source} has {first.dim}; "
                "every file of one dataset must have the same dimension."
            )
    dataset = Dataset(shards, tuple(notes))
    name = first.source if len(shards) == 1 else f"the {len(shards)} input files"
    check_row_count(dataset.n_rows, name)
    return dataset
