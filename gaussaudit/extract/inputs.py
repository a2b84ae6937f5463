"""What gets embedded: the images of a folder, or captions, as map-style datasets
a ``torch.utils.data.DataLoader`` can batch in worker processes.

Nothing here imports torch at module level (``find_images`` is plain Python);
decoding happens in ``__getitem__`` so DataLoader workers do it in parallel.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from gaussaudit.errors import GaussAuditError, option_name
from gaussaudit.io.sources import natural_key, walk_files

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def find_images(root: str | os.PathLike, limit: int | None = None) -> list[str]:
    """Image files under ``root``, recursively, as sorted relative POSIX paths.

    Files are chosen by suffix (case-insensitive: jpg, jpeg, png, webp, bmp, gif,
    tif, tiff); hidden files (``.``, macOS ``._`` resource forks) are left out,
    and so are hidden and ``_``-prefixed folders (the one folder walk of
    :func:`gaussaudit.io.sources.walk_files`). The order is natural (``img2`` before
    ``img10``) and, for names equal under it, plain string order, so the same
    folder always gives the same list. ``limit`` keeps the first N.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["b/img10.png", "b/img2.JPG", "a.webp", ".hidden.png", "notes.txt"]:
    ...     (root / name).parent.mkdir(exist_ok=True); (root / name).touch()
    >>> find_images(root)
    ['a.webp', 'b/img2.JPG', 'b/img10.png']
    """
    root = Path(root)
    if not root.exists():
        raise GaussAuditError(f"{root}: no such folder.")
    if not root.is_dir():
        raise GaussAuditError(f"{root}: is not a folder; {option_name('data')} takes a folder of images.")
    # Image files may start with "_" (cameras write _DSC0001.JPG); hidden ones never count.
    def wanted(name: str) -> bool:
        return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES

    found = [path.relative_to(root).as_posix() for path in walk_files(root, wanted)]
    found.sort(key=lambda rel: (natural_key(rel), rel))
    if not found:
        raise GaussAuditError(
            f"{root}: no images found (looked recursively for {', '.join(s[1:] for s in IMAGE_SUFFIXES)} files)."
        )
    return found[:limit] if limit is not None else found


def images_fingerprint(root: str | os.PathLike, relative_paths: list[str]) -> str:
    """SHA-256 of the image list (names and sizes): a resumed run must see the same inputs."""
    digest = hashlib.sha256()
    for rel in relative_paths:
        try:
            size = os.path.getsize(os.path.join(root, rel))
        except OSError:
            size = -1
        digest.update(f"{rel}\0{size}\n".encode())
    return digest.hexdigest()


def texts_fingerprint(texts: list[str]) -> str:
    """SHA-256 of the captions, in order."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode() + b"\n")
    return digest.hexdigest()


def _describe_image_error(exc: Exception) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not an image Pillow can read"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ImageFolderDataset:
    """Images of a folder, decoded and preprocessed one at a time.

    ``dataset[i]`` is ``(i, tensor, None)``, or ``(i, None, reason)`` when the file
    cannot be decoded (corrupt, truncated, not really an image): the run goes on
    and the caller records the reason.
    """

    def __init__(self, root: str | os.PathLike, relative_paths: list[str], transform) -> None:
        self.root = str(root)
        self.paths = relative_paths
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int):
        from PIL import Image

        path = os.path.join(self.root, self.paths[position])
        try:
            with warnings.catch_warnings():
                # Pillow warns about palette transparency and the like: harmless
                # for embeddings, noisy from many worker processes.
                warnings.simplefilter("ignore")
                with Image.open(path) as image:
                    image.load()  # decode the whole file now: a truncated one fails here
                    rgb = to_rgb(image)
        except Exception as exc:  # any decoder failure means "unreadable", never a crash
            return position, None, _describe_image_error(exc)
        return position, self.transform(rgb), None


#: Pillow modes of more than 8 bits a channel (16-bit PNG and TIFF grayscale,
#: 32-bit integer): Image.convert("RGB") clips them to 255, a near-white image.
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def to_rgb(image):
    """An 8-bit RGB copy of a Pillow image. Grayscale of 16 bits is brought to
    8 by its range (v / 257, so 65535 → 255), as image tools display it.

    Examples
    --------
    >>> import numpy as np
    >>> from PIL import Image
    >>> wide = Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.uint16))
    >>> np.asarray(to_rgb(wide))[0, :, 0].tolist()
    [0, 128, 255]
    """
    from PIL import Image

    if image.mode in _WIDE_MODES:
        import numpy as np

        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) <= 65535 else float(values.max())
        eight = np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(eight).convert("RGB")  # 2-D uint8: mode L
    return image.convert("RGB")


class TextDataset:
    """Captions, one item each: ``dataset[i]`` is ``(i, text, None)``."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, position: int):
        return position, self.texts[position], None


@dataclass
class Batch:
    """A batch as the runner sees it: every position it covers, the positions
    that were encoded (in the order of ``inputs``), and those that failed."""

    positions: list[int]
    encoded_positions: list[int]
    inputs: object  # torch.Tensor, or None when nothing in the batch could be read
    failed: list[tuple[int, str]]

    def pin_memory(self) -> "Batch":
        # DataLoader(pin_memory=True) calls this: page-locked inputs let the
        # host-to-GPU copy run asynchronously (non_blocking=True).
        if self.inputs is not None:
            self.inputs = self.inputs.pin_memory()
        return self


class Collate:
    """Turns dataset items into a :class:`Batch`; ``prepare`` (e.g. a tokenizer)
    maps the list of readable items to one tensor, default ``torch.stack``.

    A class rather than a closure so DataLoader workers can pickle it."""

    def __init__(self, prepare=None) -> None:
        self.prepare = prepare

    def __call__(self, items) -> Batch:
        import torch

        readable = [(position, value) for position, value, error in items if error is None]
        failed = [(position, error) for position, _, error in items if error is not None]
        inputs = None
        if readable:
            values = [value for _, value in readable]
            inputs = self.prepare(values) if self.prepare is not None else torch.stack(values)
        return Batch(
            positions=[position for position, _, _ in items],
            encoded_positions=[position for position, _ in readable],
            inputs=inputs,
            failed=failed,
        )
