"""Where ``gaussaudit extract`` writes, and how a long run survives an interruption.

The result is OUT: a ``.parquet`` file (a key column, ``path`` or ``text``, and
``embedding`` as fixed_size_list<float32>, with the model, weights and
preprocessing in the file's metadata) or a ``.npy`` matrix with a JSON sidecar
``OUT.json`` holding the keys in row order and the same metadata. With
``layout="clip-retrieval"`` OUT is a folder as clip-retrieval writes it:
``img_emb/img_emb_0.npy`` (or ``text_emb/text_emb_0.npy``) of float16,
L2-normalised rows and ``metadata/metadata_0.parquet`` (``image_path``,
``caption``) in row order.

While a run goes, finished blocks of inputs ("shards") are written atomically to
the folder ``OUT.parts/`` beside a manifest of the settings that produced them.
``resume=True`` reuses the shards already there, but only when the manifest
matches the new run, so embeddings from different models, weights,
preprocessing, precision or input lists are never mixed. OUT is assembled from
the shards atomically at the end, and the parts are removed only after that.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gaussaudit.errors import GaussAuditError, option_name, option_set
from gaussaudit.io.writers import _atomic, check_writable
from gaussaudit.prep.normalize import l2_normalize

OUTPUT_SUFFIXES = (".parquet", ".npy")
MANIFEST_SCHEMA = "gaussaudit.extract-parts/1"
SIDECAR_SCHEMA = "gaussaudit.extract/1"
MANIFEST_NAME = "manifest.json"
EMBEDDING_COLUMN = "embedding"

_SHARD_NAME = re.compile(r"^shard_(\d{6})\.parquet$")
_SKIPPED_KEY = b"gaussaudit.skipped"


def lock_path(out: str | os.PathLike) -> Path:
    """The lock a running extract holds beside its output: ``emb.parquet.lock``."""
    out = Path(out)
    return out.with_name(out.name + ".lock")


def _read_holder(fd: int, empty: str | None = "pid unknown") -> str | None:
    """'pid N on HOST since T' from a lock file's contents."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096).decode() or "null")
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict):
        return empty
    return f"pid {data.get('pid')} on {data.get('host')} since {data.get('started')}"


def sidecar_path(out: str | os.PathLike) -> Path:
    """The JSON sidecar of a ``.npy`` output: ``emb.npy`` → ``emb.npy.json``."""
    out = Path(out)
    return out.with_name(out.name + ".json")


def parts_path(out: str | os.PathLike) -> Path:
    """The folder of shards of a run in progress: ``emb.parquet`` → ``emb.parquet.parts``."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


#: Fields/columns taken for the texts of a .jsonl or .parquet file, in this order.
TEXT_FIELDS = ("text", "sentence", "caption", "content")


def read_texts(path: str | os.PathLike, column: str | None = None) -> list[str]:
    """The texts of ``--texts FILE``: a ``.txt`` file's lines, a ``.jsonl``
    file's ``column`` of each record (or a bare JSON string a line), a parquet
    file's ``column``. Without ``column``: the first of TEXT_FIELDS present,
    else the only text field. Blank and missing texts are left out."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".jsonl", ".parquet"):
        if column is not None:
            raise GaussAuditError(f"{option_name('text_column')} picks a field of .jsonl or a column of .parquet "
                                  f"texts; {path} is read as plain text, one text a line.")
        return read_text_lines(path)
    if suffix == ".parquet":
        texts = _parquet_texts(path, column)
    else:
        texts = _jsonl_texts(path, column)
    return [t for t in texts if isinstance(t, str) and t.strip()]


def _text_field(path, fields: dict[str, bool], column: str | None) -> str:
    """``fields``: name → holds text. The field to read, or an error listing them."""
    if column is not None:
        if column not in fields:
            raise GaussAuditError(f"{path}: has no field '{column}' (it has: {', '.join(fields) or 'none'}).")
        return column
    for name in TEXT_FIELDS:
        if fields.get(name):
            return name
    textual = [name for name, is_text in fields.items() if is_text]
    if len(textual) == 1:
        return textual[0]
    raise GaussAuditError(f"{path}: which field holds the texts? It has {', '.join(fields) or 'none'}; choose one with "
                          f"{option_set('text_column', 'NAME')}.")


def _parquet_texts(path, column: str | None) -> list:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except FileNotFoundError:
        raise GaussAuditError(f"{path}: no such file.") from None
    except Exception as exc:
        raise GaussAuditError(f"{path}: is not a readable parquet file ({type(exc).__name__}: {str(exc)[:120]}).") from None
    fields = {f.name: pa.types.is_string(f.type) or pa.types.is_large_string(f.type) for f in schema}
    name = _text_field(path, fields, column)
    if not fields[name]:
        raise GaussAuditError(f"{path}: column '{name}' holds {schema.field(name).type}, not text.")
    return pq.read_table(path, columns=[name]).column(name).to_pylist()


def _jsonl_texts(path, column: str | None) -> list:
    lines = read_text_lines(path)
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise GaussAuditError(f"{path}: line {number} is not JSON ({exc.msg}).") from None
    if all(isinstance(r, str) for r in records):
        return records
    if not all(isinstance(r, dict) for r in records):
        raise GaussAuditError(f"{path}: every line must be a JSON object (or every line a JSON string).")
    fields: dict[str, bool] = {}
    for r in records:
        for key, value in r.items():
            fields[key] = fields.get(key, False) or isinstance(value, str)
    name = _text_field(path, fields, column)
    return [r.get(name) for r in records]


def read_text_lines(path: str | os.PathLike) -> list[str]:
    """Lines of a UTF-8 text file, without line endings, blank lines left out.

    Used for ``--texts FILE`` (one caption a line).
    """
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise GaussAuditError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise GaussAuditError(f"{path}: is a folder; {option_name('texts')} takes a text file with one caption a line.") from None
    except UnicodeDecodeError as exc:
        raise GaussAuditError(f"{path}: is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    except OSError as exc:
        raise GaussAuditError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    return [line for line in lines if line.strip()]


@dataclass
class Shard:
    """One finished block of inputs as read back from ``OUT.parts``."""

    index: int
    keys: list[str]
    embeddings: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class AssembledOutput:
    """What :meth:`ExtractStore.assemble` wrote."""

    out: Path
    sidecar: Path | None
    rows: int
    dim: int
    skipped: list[tuple[str, str]]


class ExtractStore:
    """OUT plus its ``OUT.parts`` folder of shards and manifest.

    Parameters
    ----------
    out : path
        The output file; its suffix (``.parquet`` or ``.npy``) picks the format.
    key_column : {"path", "text"}
        Name of the column (parquet) or sidecar list (npy) holding what each row
        was computed from.
    overwrite : bool
        Allow replacing an existing OUT (and sidecar).
    """

    def __init__(self, out: str | os.PathLike, key_column: str = "path", overwrite: bool = False,
                 layout: str = "file") -> None:
        self.out = Path(out)
        self.key_column = key_column
        self.overwrite = overwrite
        self.parts = parts_path(self.out)
        self.layout = layout
        if layout == "clip-retrieval":
            # OUT is a folder: img_emb/ (or text_emb/) and metadata/, as clip-retrieval writes them.
            self.format = "clip-retrieval"
            self.sidecar = None
            if self.out.suffix.lower() in OUTPUT_SUFFIXES:
                raise GaussAuditError(f"{self.out}: {option_set('layout', 'clip-retrieval')} writes a folder "
                                      f"(img_emb/, metadata/); give {option_name('out')} a folder name, not a "
                                      f"{self.out.suffix} file.")
            return
        self.format = self.out.suffix.lower()
        if self.format not in OUTPUT_SUFFIXES:
            raise GaussAuditError(
                f"{self.out}: {option_name('out')} must end in .parquet or .npy (got '{self.out.suffix or '(none)'}')."
            )
        self.sidecar = sidecar_path(self.out) if self.format == ".npy" else None

    @property
    def clip_retrieval_files(self) -> tuple[Path, Path]:
        """The embeddings and metadata files of a clip-retrieval layout."""
        sub = "text_emb" if self.key_column == "text" else "img_emb"
        return self.out / sub / f"{sub}_0.npy", self.out / "metadata" / "metadata_0.parquet"

    def _targets(self) -> list[Path]:
        if self.layout == "clip-retrieval":
            return list(self.clip_retrieval_files)
        return [t for t in (self.out, self.sidecar) if t is not None]

    def _check_clip_retrieval_targets(self) -> None:
        if self.out.exists() and not self.out.is_dir():
            raise GaussAuditError(f"{self.out}: exists and is not a folder; {option_set('layout', 'clip-retrieval')} "
                                  "writes a folder.")
        parent = self.out.parent if str(self.out.parent) else Path(".")
        if not parent.is_dir():
            raise GaussAuditError(f"{self.out}: the folder {parent} does not exist.")
        for target in self.clip_retrieval_files:
            if target.exists() and not self.overwrite:
                raise GaussAuditError(f"{target}: already exists; pass {option_set('overwrite')} to replace it.")
            if target.parent.is_dir():
                check_writable(target, self.overwrite)

    # -- before the run -------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self):
        """Hold ``OUT.lock`` for the whole run: a second extract onto the same OUT
        would delete this one's shards and mix two models' rows in one file.

        The lock is ``flock`` on the file, so the kernel releases it when its
        process dies; the pid and host written in it name the holder. Yields
        the holder a lock file left behind names (a run that died), or None.
        """
        path = lock_path(self.out)
        if not path.parent.is_dir():
            raise GaussAuditError(f"{self.out}: the folder {path.parent} does not exist.")
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise GaussAuditError(f"{path}: cannot be created ({exc.strerror or exc}).") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise GaussAuditError(
                    f"{self.out}: another gaussaudit extract is writing it ({holder}; lock {path}). Wait for it "
                    "to finish or stop it; two runs onto one output would mix their rows."
                ) from None
            # The holder before us may have removed the file after we opened it:
            # then our lock is on a file no one else sees; take the new one.
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        stale = _read_holder(fd, empty=None)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        try:
            yield stale
        finally:
            try:
                os.unlink(path)
            finally:
                os.close(fd)

    def check_targets(self, resume: bool) -> None:
        """Fail before any work when the run could not finish or would lose work.

        OUT (and the sidecar) must be new unless ``overwrite``; a parts folder left
        by an earlier run is only continued with ``resume`` — never silently
        discarded. A resumed run whose every shard is done (killed while writing
        OUT, or before removing the parts) assembles OUT again from them.
        """
        # A run killed while writing OUT or its sidecar left a hidden temporary
        # beside it; under this run's lock no other extract can be writing one.
        for target in self._targets():
            if target.parent.is_dir():
                for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
                    leftover.unlink(missing_ok=True)
        if resume and self._all_shards_done():
            self.overwrite = True  # OUT, if there, is being rebuilt from the same shards
        if self.layout == "clip-retrieval":
            self._check_clip_retrieval_targets()
        else:
            for target in self._targets():
                check_writable(target, self.overwrite)
        if self.parts.exists() and not self.parts.is_dir():
            raise GaussAuditError(f"{self.parts}: exists and is not a folder; move it away.")
        done = len(self.finished_shards())
        if done and not resume:
            raise GaussAuditError(
                f"{self.parts}: an earlier run left {done} finished shard{'s' if done != 1 else ''} here. "
                f"Pass {option_set('resume')} to continue it, or delete the folder to start over."
            )

    def open_parts(self, manifest: dict, resume: bool) -> set[int]:
        """Create ``OUT.parts`` with ``manifest``, or check a resumed one against it.

        Returns the indices of shards already finished (empty for a new run).
        ``manifest`` holds ``settings`` (everything that changes the embeddings) and
        the shard plan; a resumed run must match it exactly.
        """
        manifest = {"schema": MANIFEST_SCHEMA, **manifest}
        manifest_file = self.parts / MANIFEST_NAME
        # A parts folder without finished shards holds no work: it is simply reused.
        if resume and manifest_file.exists() and self.finished_shards():
            previous = self._read_manifest(manifest_file)
            differences = _differences(previous, manifest)
            if differences:
                raise GaussAuditError(
                    f"{option_set('resume')}: {self.parts} was written with other settings, and shards of different runs "
                    f"are never mixed: {'; '.join(differences)}. Run with the original settings, or delete "
                    "the folder to start over."
                )
            self._remove_leftover_temporaries()
            return self.finished_shards()
        try:
            self.parts.mkdir(exist_ok=True)
            # Starting afresh: shard files of an unknown run (no manifest to check
            # them against) must not be taken for this run's work later.
            for index in self.finished_shards():
                self.shard_file(index).unlink()
            self._remove_leftover_temporaries()
            write_json_atomic(manifest_file, manifest, overwrite=True)
        except OSError as exc:
            raise GaussAuditError(f"{self.parts}: cannot be written ({exc.strerror or exc}).") from None
        return set()

    def _all_shards_done(self) -> bool:
        manifest_file = self.parts / MANIFEST_NAME
        if not manifest_file.is_file():
            return False
        try:
            n_shards = int(self._read_manifest(manifest_file).get("n_shards", -1))
        except (GaussAuditError, TypeError, ValueError):
            return False
        return n_shards > 0 and self.finished_shards() == set(range(n_shards))

    def _read_manifest(self, path: Path) -> dict:
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise GaussAuditError(
                f"{path}: cannot be read ({exc}); delete {self.parts} to start over."
            ) from None
        if not isinstance(data, dict) or data.get("schema") != MANIFEST_SCHEMA:
            raise GaussAuditError(f"{path}: is not a gaussaudit extract manifest; delete {self.parts} to start over.")
        return data

    def _remove_leftover_temporaries(self) -> None:
        # A run killed while writing leaves a hidden temporary file; it never
        # became a shard (shards appear only by atomic rename), so it can go.
        for leftover in self.parts.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)

    def finished_shards(self) -> set[int]:
        """Indices of the shard files present in ``OUT.parts``."""
        if not self.parts.is_dir():
            return set()
        found = set()
        for entry in self.parts.iterdir():
            match = _SHARD_NAME.match(entry.name)
            if match:
                found.add(int(match.group(1)))
        return found

    # -- during the run -------------------------------------------------------------

    def shard_file(self, index: int) -> Path:
        return self.parts / f"shard_{index:06d}.parquet"

    def write_shard(
        self,
        index: int,
        keys: list[str],
        embeddings: np.ndarray,
        skipped: list[tuple[str, str]] = (),
    ) -> Path:
        """Write one finished shard atomically.

        ``embeddings`` is ``(len(keys), dim)``; ``skipped`` lists the inputs of the
        shard that could not be read, as ``(key, reason)``, so the final report can
        name them even when the shard came from an earlier, interrupted run.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if not keys:
            # Every input of the shard was unreadable; arrow needs a list size > 0,
            # and the dimension of an empty shard is never used.
            embeddings = np.empty((0, 1), dtype=np.float32)
        if embeddings.ndim != 2 or len(embeddings) != len(keys):
            raise ValueError(f"shard {index}: {len(keys)} keys but embeddings of shape {embeddings.shape}")
        table = pa.table({
            "key": pa.array(list(keys), type=pa.string()),
            EMBEDDING_COLUMN: pa.FixedSizeListArray.from_arrays(pa.array(embeddings.ravel()), embeddings.shape[1]),
        })
        table = table.replace_schema_metadata({_SKIPPED_KEY: json.dumps([list(s) for s in skipped]).encode()})
        target = self.shard_file(index)
        try:
            with _atomic(target, overwrite=True) as tmp:
                pq.write_table(table, tmp)
        except OSError as exc:
            raise GaussAuditError(f"{target}: cannot be written ({exc.strerror or exc}).") from None
        return target

    def read_shard(self, index: int) -> Shard:
        """Read one shard back (for assembling OUT)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.shard_file(index)
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise GaussAuditError(
                f"{path}: cannot be read ({exc}); delete it and run again with {option_set('resume')} to recompute it."
            ) from None
        column = table.column(EMBEDDING_COLUMN).combine_chunks()
        dim = column.type.list_size
        values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        skipped = json.loads((table.schema.metadata or {}).get(_SKIPPED_KEY, b"[]"))
        return Shard(
            index=index,
            keys=table.column("key").to_pylist(),
            embeddings=values.reshape(-1, dim),
            skipped=[(str(k), str(r)) for k, r in skipped],
        )

    def _shard_summary(self, index: int) -> tuple[int, int, list[tuple[str, str]]]:
        """Rows, dimension and skipped inputs of a shard, from its footer alone."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.shard_file(index)
        try:
            footer = pq.read_metadata(path)
            schema = footer.schema.to_arrow_schema()
        except (pa.ArrowException, OSError) as exc:
            raise GaussAuditError(
                f"{path}: cannot be read ({exc}); delete it and run again with {option_set('resume')} to recompute it."
            ) from None
        skipped = json.loads((schema.metadata or {}).get(_SKIPPED_KEY, b"[]"))
        dim = schema.field(EMBEDDING_COLUMN).type.list_size
        return footer.num_rows, dim, [(str(k), str(r)) for k, r in skipped]

    # -- after the run --------------------------------------------------------------

    def assemble(self, n_shards: int, metadata: dict, captions: dict[str, str] | None = None) -> AssembledOutput:
        """Join shards ``0 … n_shards-1`` into OUT, atomically, in input order.

        ``metadata`` (JSON-able) goes into the parquet file's metadata or the npy
        sidecar. Raises when every input was skipped: there is nothing to write.
        """
        missing = sorted(set(range(n_shards)) - self.finished_shards())
        if missing:
            raise GaussAuditError(f"{self.parts}: shards {missing[:5]} are missing; run again with {option_set('resume')}.")
        # The plan (row counts, dimension, skipped inputs) comes from the shards'
        # footers; the embeddings are then read one shard at a time while writing.
        rows, dim, skipped = 0, 0, []
        for index in range(n_shards):
            shard_rows, shard_dim, shard_skipped = self._shard_summary(index)
            rows += shard_rows
            skipped.extend(shard_skipped)
            if shard_rows:
                if dim and shard_dim != dim:
                    raise GaussAuditError(
                        f"{self.shard_file(index)}: has dimension {shard_dim}, others {dim}; "
                        f"delete {self.parts} and start over."
                    )
                dim = shard_dim
        if rows == 0:
            # The shards hold nothing but the list of unreadable files, shown here.
            self.remove_parts()
            examples = "; ".join(f"{key}: {reason}" for key, reason in skipped[:3])
            raise GaussAuditError(
                f"none of the {len(skipped)} inputs could be read, so there is nothing to write to {self.out} "
                f"(e.g. {examples})."
            )
        metadata = {**metadata, "rows": rows, "dim": dim, "skipped": [list(s) for s in skipped]}
        try:
            if self.layout == "clip-retrieval":
                self._assemble_clip_retrieval(n_shards, rows, dim, metadata, captions)
            elif self.format == ".parquet":
                self._assemble_parquet(n_shards, dim, metadata)
            else:
                self._assemble_npy(n_shards, rows, dim, metadata)
        except OSError as exc:
            raise GaussAuditError(f"{self.out}: cannot be written ({exc.strerror or exc}).") from None
        return AssembledOutput(out=self.out, sidecar=self.sidecar, rows=rows, dim=dim, skipped=skipped)

    def _assemble_parquet(self, n_shards: int, dim: int, metadata: dict) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema(
            [(self.key_column, pa.string()), (EMBEDDING_COLUMN, pa.list_(pa.float32(), dim))],
            metadata=parquet_metadata(metadata),
        )
        with _atomic(self.out, self.overwrite) as tmp:
            with pq.ParquetWriter(tmp, schema) as writer:
                for index in range(n_shards):
                    shard = self.read_shard(index)
                    if not shard.keys:
                        continue
                    values = pa.array(shard.embeddings.ravel())
                    writer.write_table(pa.table(
                        [pa.array(shard.keys, type=pa.string()), pa.FixedSizeListArray.from_arrays(values, dim)],
                        schema=schema,
                    ))

    def _assemble_npy(self, n_shards: int, rows: int, dim: int, metadata: dict) -> None:
        with _atomic(self.out, self.overwrite) as tmp:
            keys = self._write_npy_rows(tmp, n_shards, rows, dim, np.float32, lambda embeddings: embeddings)
            fingerprint = npy_fingerprint(tmp)
        # Data first, sidecar last, the sidecar naming the data by fingerprint: a
        # run killed between the two leaves a pair scan recognises as mismatched.
        sidecar = {"schema": SIDECAR_SCHEMA, **metadata, "data_fingerprint": fingerprint, "key": self.key_column,
                   self.key_column + "s": keys}
        write_json_atomic(self.sidecar, sidecar, overwrite=True)

    def _write_npy_rows(self, path, n_shards: int, rows: int, dim: int, dtype, transform) -> list[str]:
        """Write every shard's ``transform(embeddings)`` as one ``.npy`` of ``dtype``
        to ``path``, in shard order; returns the row keys in the same order."""
        keys: list[str] = []
        # Plain writes, not a memory map: on a full disk a write fails with
        # ENOSPC (an error we report) where a mapped page dies with SIGBUS.
        with open(path, "wb") as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                     "shape": (rows, dim)})
            for index in range(n_shards):
                shard = self.read_shard(index)
                if not shard.keys:
                    continue
                fh.write(np.ascontiguousarray(transform(shard.embeddings), dtype=dtype).tobytes())
                keys.extend(shard.keys)
            fh.flush()
            os.fsync(fh.fileno())
        return keys

    def _assemble_clip_retrieval(self, n_shards: int, rows: int, dim: int, metadata: dict,
                                 captions: dict[str, str] | None) -> None:
        """clip-retrieval's layout: float16 rows, each L2-normalised (as
        ``clip-retrieval inference`` writes them), and a metadata parquet of
        ``image_path`` (image keys) and ``caption`` (when known), in row order."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        emb_file, meta_file = self.clip_retrieval_files
        emb_file.parent.mkdir(parents=True, exist_ok=True)
        meta_file.parent.mkdir(parents=True, exist_ok=True)
        with _atomic(emb_file, self.overwrite) as tmp:
            keys = self._write_npy_rows(tmp, n_shards, rows, dim, np.float16, l2_normalize)
        if self.key_column == "text":
            columns = {"caption": pa.array(keys, type=pa.string())}
        else:
            columns = {"image_path": pa.array(keys, type=pa.string())}
            if captions:
                columns["caption"] = pa.array([captions.get(k) for k in keys], type=pa.string())
        table = pa.table(columns).replace_schema_metadata(parquet_metadata(metadata))
        with _atomic(meta_file, self.overwrite) as tmp:
            pq.write_table(table, tmp)

    def remove_parts(self) -> None:
        """Delete ``OUT.parts`` once OUT is written."""
        shutil.rmtree(self.parts, ignore_errors=True)

    def remove_parts_if_empty(self) -> None:
        """After a failed run: a parts folder without finished shards holds no work."""
        if self.parts.is_dir() and not self.finished_shards():
            self.remove_parts()


#: What ``scan`` carries into its report from a file ``extract`` wrote, so the
#: report can be tied to the weights that made the embeddings.
PROVENANCE_KEYS = ("model", "pretrained", "checkpoint", "checkpoint_sha256", "head", "modality", "precision",
                   "source", "gaussaudit_version")


def provenance_from_parquet(metadata: dict[bytes, bytes] | None) -> dict | None:
    """The extract metadata of a parquet file's key-value metadata; None for a
    file ``extract`` did not write."""
    if not metadata or b"model" not in metadata:
        return None
    out = dict.fromkeys(PROVENANCE_KEYS)  # a key extract left out (None) is null, as in the npy sidecar
    for key in PROVENANCE_KEYS:
        raw = metadata.get(key.encode())
        if raw is None:
            continue
        text = raw.decode("utf-8", "replace")
        try:  # written as JSON unless a string (parquet_metadata)
            value = json.loads(text)
        except ValueError:
            value = text
        out[key] = value if isinstance(value, (str, bool, int, float)) or value is None else text
    return out


#: Bytes read from each end of a .npy file for its fingerprint.
_FINGERPRINT_BYTES = 1 << 20


def npy_fingerprint(path: str | os.PathLike) -> str:
    """``size:sha256`` of a file's size and its first and last MiB: cheap to
    check at every scan, and different for any other extract output (a new
    header, new rows at both ends).

    The embeddings' own hash would mean reading the whole file once more.
    """
    size = os.path.getsize(path)
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        digest.update(fh.read(_FINGERPRINT_BYTES))
        if size > _FINGERPRINT_BYTES:
            fh.seek(max(_FINGERPRINT_BYTES, size - _FINGERPRINT_BYTES))
            digest.update(fh.read())
    return f"{size}:{digest.hexdigest()}"


def provenance_from_sidecar(npy_path: str | os.PathLike) -> dict | None:
    """The extract metadata of ``OUT.npy.json`` beside a ``.npy`` file; None when
    there is none (or it is not an extract sidecar).

    Raises GaussAuditError when the sidecar names other data (its fingerprint
    differs): an ``--overwrite`` killed between the file and its sidecar.
    """
    path = sidecar_path(npy_path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SIDECAR_SCHEMA:
        return None
    recorded = data.get("data_fingerprint")
    if recorded is not None and recorded != npy_fingerprint(npy_path):
        raise GaussAuditError(
            f"{path}: describes another version of {npy_path} (the fingerprint of the data it names does not "
            "match): an extract --overwrite was interrupted between the two files. Run that extract again, or "
            "delete the sidecar to scan the file without its provenance."
        )
    return {key: data.get(key) for key in PROVENANCE_KEYS}


def parquet_metadata(metadata: dict) -> dict[bytes, bytes]:
    """Parquet key-value metadata: strings as they are, everything else as JSON."""
    out = {}
    for key, value in metadata.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        out[key.encode()] = text.encode()
    return out


def write_json_atomic(path: str | os.PathLike, data, overwrite: bool = False) -> None:
    """Write ``data`` as indented JSON atomically."""
    with _atomic(path, overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.write("\n")


#: How a differing setting is named in the --resume refusal.
_SETTING_NAMES = {
    "inputs_sha256": "input list (SHA-256 of names and sizes)",
    "checkpoint_sha256": "checkpoint (SHA-256)",
    "n_items": "number of inputs",
}


def _differences(previous: dict, current: dict) -> list[str]:
    """Settings that differ between two manifests, as 'name was X, now Y'."""
    old, new = previous.get("settings", {}), current.get("settings", {})
    return [
        f"{_SETTING_NAMES.get(name, name)} was {_short(old.get(name))}, now {_short(new.get(name))}"
        for name in sorted(set(old) | set(new))
        if old.get(name) != new.get(name)
    ]


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    if re.fullmatch(r"[0-9a-f]{64}", text):
        return text[:12] + "…"  # a SHA-256: enough to tell two apart
    return text if len(text) <= 60 else text[:57] + "..."
