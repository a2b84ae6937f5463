"""Inputs in object storage and on web servers: ``s3://``, ``gs://``,
``https://`` and any other fsspec protocol, read with the same readers,
folder rules and globs as local files.

Credentials come from where the storage's own tools look (for S3 the
``AWS_*`` environment variables, ``~/.aws/config`` and ``credentials``, an
instance role; ``AWS_ENDPOINT_URL`` for an S3-compatible server; for GCS
``GOOGLE_APPLICATION_CREDENTIALS``), never from gaussaudit's options, and are
never printed: a URL is shown without its user part and query string
(:func:`display_name`), where signed URLs keep their tokens.

Each protocol needs its fsspec implementation: ``pip install 'gaussaudit[s3]'``
(s3fs), ``'gaussaudit[gcs]'`` (gcsfs), ``'gaussaudit[http]'`` (aiohttp).
"""
from __future__ import annotations

import re
from pathlib import PurePosixPath

from gaussaudit.errors import GaussAuditError

_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$")
#: Protocols and the extra that installs their fsspec implementation.
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "http": "http", "https": "http"}
#: Read-ahead of a remote file: a chunk of rows is ~32 MB, so a few requests each.
BLOCK_SIZE = 8 << 20


def is_url(text) -> bool:
    """Whether an input names a remote file or folder (``scheme://…``, not ``file://``).

    Examples
    --------
    >>> is_url("s3://bucket/emb/"), is_url("emb/part-0.npy"), is_url("file:///tmp/x.npy")
    (True, False, False)
    """
    match = _URL.match(str(text)) if isinstance(text, (str, RemotePath)) else None
    return bool(match) and match.group("scheme").lower() != "file"


def display_name(url: str) -> str:
    """A URL as reports and messages show it: no ``user:password@``, no query
    string or fragment (a signed URL's token lives there).

    Examples
    --------
    >>> display_name("https://user:pw@host/x.parquet?X-Amz-Signature=abc")
    'https://host/x.parquet'
    >>> display_name("s3://bucket/emb/part-0.npy")
    's3://bucket/emb/part-0.npy'
    """
    match = _URL.match(url)
    if not match:
        return url
    rest = re.split(r"[?#]", match.group("rest"), maxsplit=1)[0]
    host, sep, tail = rest.partition("/")
    return f"{match.group('scheme')}://{host.rpartition('@')[2]}{sep}{tail}"


def _filesystem(url: str):
    """The fsspec filesystem of ``url``, or a GaussAuditError saying what to install."""
    scheme = _URL.match(url).group("scheme").lower()
    try:
        import fsspec
    except ImportError:  # pragma: no cover - fsspec comes with every remote extra
        raise GaussAuditError(f"{display_name(url)}: reading {scheme}:// needs fsspec: "
                              f"pip install 'gaussaudit[{EXTRAS.get(scheme, 's3')}]'.") from None
    try:
        return fsspec.filesystem(scheme)
    except ImportError:
        extra = EXTRAS.get(scheme)
        how = f"pip install 'gaussaudit[{extra}]'" if extra else "install its fsspec implementation"
        raise GaussAuditError(f"{display_name(url)}: reading {scheme}:// needs a package that is not installed: "
                              f"{how}.") from None
    except ValueError:
        raise GaussAuditError(f"{display_name(url)}: {scheme}:// is not a protocol gaussaudit can read (fsspec "
                              "knows no such protocol).") from None


def remote_failure(url: str, exc: BaseException) -> GaussAuditError:
    """A one-line error for a remote read that failed, naming the URL (never
    its credentials) and the storage's reason."""
    name = display_name(url)
    if isinstance(exc, GaussAuditError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return GaussAuditError(f"{name}: no such file or folder.")
    if isinstance(exc, PermissionError):
        return GaussAuditError(f"{name}: cannot be read (access denied; check the credentials the storage's own tools "
                               "use: AWS_* variables, ~/.aws, GOOGLE_APPLICATION_CREDENTIALS…).")
    if isinstance(exc, ValueError) and "range requests" in str(exc):
        return GaussAuditError(f"{name}: the web server does not answer range requests (HTTP 206), which reading a "
                               "file piece by piece needs; serve it from one that does (nginx, Apache, S3, GCS, the "
                               "Hugging Face hub), or download it first.")
    kind = type(exc).__name__
    if kind in ("NoCredentialsError", "PartialCredentialsError"):
        return GaussAuditError(f"{name}: no credentials were found for it (set AWS_ACCESS_KEY_ID and "
                               "AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws; public buckets need AWS_NO_SIGN_REQUEST "
                               "or anon access in fsspec's config).")
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return GaussAuditError(f"{name}: cannot be read ({kind}{': ' + text if text else ''}).")


class RemotePath:
    """A remote file or folder with the part of :class:`pathlib.Path` the
    folder rules use (``/``, ``name``, ``suffix``, ``parts``, ``relative_to``,
    ``is_dir``, ``is_file``, ``exists``, ``iterdir``), so clip-retrieval and
    Hugging Face layouts, natural order and hidden-name rules hold remotely.

    Examples
    --------
    >>> p = RemotePath("s3://bucket/emb") / "img_emb" / "img_emb_0.npy"
    >>> str(p), p.name, p.suffix, p.relative_to(RemotePath("s3://bucket/emb")).as_posix()
    ('s3://bucket/emb/img_emb/img_emb_0.npy', 'img_emb_0.npy', '.npy', 'img_emb/img_emb_0.npy')
    """

    def __init__(self, url: str) -> None:
        match = _URL.match(str(url))
        self.scheme = match.group("scheme")
        self._pure = PurePosixPath(match.group("rest").rstrip("/") or "/")

    def __str__(self) -> str:
        return f"{self.scheme}://{self._pure.as_posix()}"

    def __repr__(self) -> str:
        return f"RemotePath({display_name(str(self))!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, RemotePath) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __truediv__(self, name: str) -> "RemotePath":
        return RemotePath(f"{self}/{name}")

    name = property(lambda self: self._pure.name)
    suffix = property(lambda self: self._pure.suffix)
    parts = property(lambda self: self._pure.parts)

    def relative_to(self, root: "RemotePath") -> PurePosixPath:
        return self._pure.relative_to(root._pure)

    def as_posix(self) -> str:
        return str(self)

    def _fs(self):
        return _filesystem(str(self))

    def _ask(self, method: str, *args, **kwargs):
        try:
            return getattr(self._fs(), method)(str(self), *args, **kwargs)
        except Exception as exc:  # the storage's own errors: botocore, aiohttp, OSError…
            raise remote_failure(str(self), exc) from None

    def _info(self) -> dict | None:
        try:
            return self._ask("info")
        except GaussAuditError as exc:
            if str(exc).endswith("no such file or folder."):
                return None
            raise

    def is_dir(self) -> bool:
        info = self._info()
        return info is not None and info.get("type") == "directory"

    def is_file(self) -> bool:
        info = self._info()
        return info is not None and info.get("type") == "file"

    def exists(self) -> bool:
        return self._info() is not None

    def iterdir(self):
        fs = self._fs()
        return [self._child(fs, entry) for entry in self._ask("ls", detail=False)]

    def _child(self, fs, entry: str) -> "RemotePath":
        return RemotePath(fs.unstrip_protocol(entry))

    def walk_files(self, wanted) -> list["RemotePath"]:
        """Files below this folder whose name ``wanted`` accepts, skipping
        hidden and ``_`` names on the way (as the local folder walk does)."""
        from gaussaudit.io.sources import is_ignored_name

        fs = self._fs()
        found = []
        for entry in self._ask("find"):
            child = self._child(fs, entry)
            if child == self:
                continue
            if any(is_ignored_name(part) for part in child.relative_to(self).parts[:-1]):
                continue
            if wanted(child.name):
                found.append(child)
        return found

    def glob(self) -> list["RemotePath"]:
        """The files this pattern matches."""
        fs = self._fs()
        matches = self._ask("glob", detail=True)
        return [self._child(fs, entry) for entry, info in matches.items() if info.get("type") == "file"]


def open_binary(path):
    """A binary file object for a local path or a URL (remote reads are
    buffered in :data:`BLOCK_SIZE` blocks, read ahead)."""
    if not is_url(path):
        return open(path, "rb")
    url = str(path)
    fs = _filesystem(url)
    try:
        return fs.open(url, "rb", block_size=BLOCK_SIZE, cache_type="readahead")
    except Exception as exc:  # the storage's own errors
        raise remote_failure(url, exc) from None


def file_size(path) -> int:
    """Size in bytes of a local file or a remote object."""
    import os

    if not is_url(path):
        return os.path.getsize(path)
    url = str(path)
    try:
        return int(_filesystem(url).size(url))
    except GaussAuditError:
        raise
    except Exception as exc:
        raise remote_failure(url, exc) from None
