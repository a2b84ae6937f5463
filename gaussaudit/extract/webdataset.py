"""webdataset input for ``extract``: the tar shards img2dataset and clip-retrieval
use, each sample the files sharing a key inside a tar (``00001.jpg``,
``00001.txt``, ``00001.json``).

``--data`` names the shards as webdataset spells them: brace ranges
(``shards/{00000..00009}.tar``), a glob (``shards/*.tar``), a single ``.tar``,
or a folder whose ``.tar`` files are the shards.

Read with the standard ``tarfile`` module, not the ``webdataset`` package
(light as it is: a 75 KB wheel needing braceexpand, numpy and pyyaml): the
runner is built on map-style datasets (input position → item, batches that
never straddle a shard, DataLoader workers decoding by position), and
webdataset's pipelines are iterable-only. One pass over each tar's headers
gives every image member's offset and size; ``__getitem__`` then reads those
bytes directly, in any worker, in any order. Nothing to install either.

Nothing here imports torch.
"""
from __future__ import annotations

import glob
import hashlib
import io
import os
import re
import tarfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from gaussaudit.errors import GaussAuditError, option_name

#: Image members of a sample, by extension, in the order one is picked when a
#: sample has several.
WDS_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
_BRACE = re.compile(r"\{(\d+)\.\.(\d+)\}")
_GLOB_CHARS = set("*?[")


def is_webdataset_spec(data: str | os.PathLike) -> bool:
    """Whether ``--data`` names tar shards rather than a folder of images.

    A path ending in ``.tar``, a brace range or glob, or a folder holding
    ``.tar`` files at its top level and no images.
    """
    text = str(data)
    root = Path(text)
    if not root.is_dir():  # a folder named "photos [2020]" is a folder, not a glob
        return bool(text.lower().endswith(".tar") or _BRACE.search(text) or (_GLOB_CHARS & set(text)))
    try:
        has_tars = any(p.suffix.lower() == ".tar" and p.is_file() for p in root.iterdir())
    except OSError:
        return False
    if not has_tars:
        return False
    from gaussaudit.extract.inputs import find_images

    try:
        find_images(root, limit=1)
    except GaussAuditError:
        return True  # tars and no images: the tars are the data
    return False


def expand_braces(spec: str) -> list[str]:
    """Expand webdataset's brace ranges, zero padding kept (several ranges multiply).

    Examples
    --------
    >>> expand_braces("s/{000..002}.tar")
    ['s/000.tar', 's/001.tar', 's/002.tar']
    >>> expand_braces("a-{1..2}-{08..09}.tar")
    ['a-1-08.tar', 'a-1-09.tar', 'a-2-08.tar', 'a-2-09.tar']
    """
    match = _BRACE.search(spec)
    if match is None:
        return [spec]
    low, high = match.group(1), match.group(2)
    width = len(low) if low.startswith("0") or len(low) == len(high) else 0
    start, stop = int(low), int(high)
    if stop < start:
        raise GaussAuditError(f"{spec}: the range {{{low}..{high}}} counts down; write it low..high.")
    head, tail = spec[: match.start()], spec[match.end():]
    return [expanded for n in range(start, stop + 1) for expanded in expand_braces(f"{head}{n:0{width}d}{tail}")]


def resolve_shards(data: str | os.PathLike) -> list[Path]:
    """The tar files ``--data`` names, in shard order (brace order, else sorted).

    Raises GaussAuditError naming a missing shard, a glob or folder without tars.
    """
    text = str(data)
    if os.path.isfile(text):  # one tar, whatever its name holds
        return [Path(text)]
    if _BRACE.search(text):
        paths = [Path(p) for p in expand_braces(text)]
        for path in paths:
            if not path.is_file():
                raise GaussAuditError(f"{path}: no such shard (from {option_name('data')} {text}).")
        return paths
    if _GLOB_CHARS & set(text):
        from gaussaudit.io.sources import natural_key

        paths = sorted((Path(p) for p in glob.glob(text) if os.path.isfile(p)), key=lambda p: (natural_key(str(p)), str(p)))
        if not paths:
            raise GaussAuditError(f"{text}: matches no files.")
        return paths
    path = Path(text)
    if path.is_dir():
        from gaussaudit.io.sources import natural_key

        paths = sorted((p for p in path.iterdir() if p.suffix.lower() == ".tar" and p.is_file()
                        and not p.name.startswith(".")), key=lambda p: (natural_key(p.name), p.name))
        if not paths:
            raise GaussAuditError(f"{path}: holds no .tar shards.")
        return paths
    if not path.exists():
        raise GaussAuditError(f"{path}: no such file.")
    return [path]


def _shard_names(paths: list[Path]) -> list[str]:
    """How each shard is named in the row keys: its file name, or its path from
    the shards' common folder where file names repeat."""
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    common = Path(os.path.commonpath([str(p.resolve()) for p in paths]))
    return [p.resolve().relative_to(common).as_posix() for p in paths]


@dataclass
class WdsSample:
    """One image of a tar: where its bytes are, and its caption when the sample has a .txt."""

    shard: int
    offset: int
    size: int
    caption: str | None = None


@dataclass
class WdsIndex:
    """Every sample with an image in the shards, in shard then in-tar order."""

    paths: list[Path]
    names: list[str]
    keys: list[str] = field(default_factory=list)  # "SHARD/KEY", one a sample
    samples: list[WdsSample] = field(default_factory=list)
    ranges: list[range] = field(default_factory=list)  # sample positions of each shard
    sizes: list[int] = field(default_factory=list)

    @property
    def captions(self) -> dict[str, str]:
        return {k: s.caption for k, s in zip(self.keys, self.samples) if s.caption is not None}

    def fingerprint(self) -> str:
        """SHA-256 of the shards' names and sizes and the sample keys: a resumed run must see the same inputs."""
        digest = hashlib.sha256()
        for name, size in zip(self.names, self.sizes):
            digest.update(f"{name}\0{size}\n".encode())
        for key in self.keys:
            digest.update(key.encode() + b"\n")
        return digest.hexdigest()


def _split_member(name: str) -> tuple[str, str]:
    """webdataset's split of a member name: key = up to the first dot of the
    base name, extension = the rest (``a/b.seg.jpg`` → ``a/b``, ``seg.jpg``)."""
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), (ext.lower() if dot else "")


def index_shards(data: str | os.PathLike, limit: int | None = None, captions: bool = False) -> WdsIndex:
    """Read the tar headers of every shard ``data`` names.

    ``captions``: also read each sample's ``.txt`` member. ``limit`` keeps the
    first N samples (later shards are then left out).

    Raises GaussAuditError for a file that is not a tar (or is cut short), and
    when no shard holds an image.
    """
    paths = resolve_shards(data)
    index = WdsIndex(paths=paths, names=_shard_names(paths))
    for shard, (path, name) in enumerate(zip(paths, index.names)):
        if limit is not None and len(index.keys) >= limit:
            break
        start = len(index.keys)
        try:
            size = path.stat().st_size
            with tarfile.open(path, mode="r:") as tar:  # plain tars only, as webdataset writes them
                members = tar.getmembers()
                groups: dict[str, dict[str, tarfile.TarInfo]] = {}
                for member in members:
                    if not member.isfile() or member.name.rpartition("/")[2].startswith("."):
                        continue
                    key, ext = _split_member(member.name)
                    groups.setdefault(key, {})[ext] = member
                for key, files in groups.items():  # dicts keep insertion (in-tar) order
                    image = next((files[e] for e in WDS_IMAGE_EXTENSIONS if e in files), None)
                    if image is None:
                        continue  # a sample without an image (img2dataset keeps none, but others may)
                    caption = None
                    if captions and "txt" in files:
                        handle = tar.extractfile(files["txt"])
                        caption = handle.read().decode("utf-8", "replace").strip() if handle else None
                    index.keys.append(f"{name}/{key}")
                    index.samples.append(WdsSample(shard, image.offset_data, image.size, caption))
                    if limit is not None and len(index.keys) >= limit:
                        break
        except tarfile.TarError as exc:
            raise GaussAuditError(f"{path}: is not a readable tar file ({str(exc) or type(exc).__name__}).") from None
        except OSError as exc:
            raise GaussAuditError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
        index.ranges.append(range(start, len(index.keys)))
        index.sizes.append(size)
    if not index.keys:
        raise GaussAuditError(
            f"{data}: no images in {len(paths)} shard{'s' if len(paths) != 1 else ''} (looked for samples with "
            f"{', '.join(WDS_IMAGE_EXTENSIONS)} files)."
        )
    return index


class WebDatasetImages:
    """The images of tar shards, decoded and preprocessed one at a time, as
    :class:`gaussaudit.extract.inputs.ImageFolderDataset` does for a folder:
    ``dataset[i]`` is ``(i, tensor, None)`` or ``(i, None, reason)`` for an
    image that cannot be decoded (skipped, counted and listed)."""

    def __init__(self, index: WdsIndex, transform) -> None:
        self.paths = [str(p) for p in index.paths]
        self.samples = index.samples
        self.transform = transform
        self._files: dict[int, object] = {}

    def __getstate__(self):  # DataLoader workers open their own file handles
        state = dict(self.__dict__)
        state["_files"] = {}
        return state

    def __len__(self) -> int:
        return len(self.samples)

    def _read(self, sample: WdsSample) -> bytes:
        handle = self._files.get(sample.shard)
        if handle is None:
            handle = self._files[sample.shard] = open(self.paths[sample.shard], "rb")  # noqa: SIM115
        handle.seek(sample.offset)
        return handle.read(sample.size)

    def __getitem__(self, position: int):
        from PIL import Image

        from gaussaudit.extract.inputs import _describe_image_error, to_rgb

        sample = self.samples[position]
        try:
            data = self._read(sample)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(data)) as image:
                    image.load()
                    rgb = to_rgb(image)
        except Exception as exc:  # any decoder failure means "unreadable", never a crash
            return position, None, _describe_image_error(exc)
        return position, self.transform(rgb), None

    def __del__(self) -> None:
        for handle in self._files.values():
            try:
                handle.close()
            except Exception:  # noqa: BLE001 - closing at teardown
                pass
