"""Folder layouts other tools write, recognised without flags.

- clip-retrieval (``clip-retrieval inference``): ``img_emb/img_emb_N.npy``,
  ``text_emb/text_emb_N.npy`` and ``metadata/metadata_N.parquet``. Each
  embedding folder is a dataset of its own; ``metadata/`` is never read as
  embeddings. With both, scan and compare show them side by side; ``only``
  picks one.
- Hugging Face ``datasets`` parquet exports: ``data/train-00000-of-00003.parquet``
  (the split in the file name) or split folders (``train/0000.parquet``).
  Every split is read unless ``split`` picks one; the report says which.
"""
from __future__ import annotations

import re
from pathlib import Path

from gaussaudit.errors import GaussAuditError, option_name, option_set

#: clip-retrieval's embedding sets: name → folder.
CLIP_RETRIEVAL_SETS = {"image": "img_emb", "text": "text_emb"}
_SPLIT_FILE = re.compile(r"^(?P<split>[A-Za-z][\w.]*?)-\d{5}-of-\d{5}\.parquet$", re.I)
#: Folder names taken for Hugging Face splits (any other folder is just a folder of shards).
SPLIT_FOLDERS = ("train", "validation", "valid", "val", "dev", "test")


def clip_retrieval_sets(folder: Path) -> dict[str, Path]:
    """The embedding sets of a clip-retrieval output folder (those with .npy
    files), by name; empty when ``folder`` is not one.

    Examples
    --------
    >>> clip_retrieval_sets(Path("/nonexistent"))
    {}
    """
    found = {}
    for name, sub in CLIP_RETRIEVAL_SETS.items():
        path = folder / sub
        try:
            if path.is_dir() and any(p.suffix.lower() == ".npy" for p in path.iterdir()):
                found[name] = path
        except OSError:  # cannot be searched or listed: the folder walk names it
            continue
    return found


def embedding_sets(source, only: str | None = None) -> list[tuple[str, Path]] | None:
    """A single path naming a clip-retrieval folder with several embedding
    sets, and no ``only``: its sets as ``(name, folder)``, to be audited side by
    side. None otherwise (one dataset)."""
    if isinstance(source, (list, tuple)):
        if len(source) != 1:
            return None
        source = source[0]
    if only is not None or not isinstance(source, (str, Path)):
        return None
    try:
        sets = clip_retrieval_sets(Path(source)) if Path(source).is_dir() else {}
    except OSError:  # not readable: the audit itself says so, as for any input
        return None
    return list(sets.items()) if len(sets) > 1 else None


def check_layout_options(only: str | None, split: str | None) -> None:
    if only is not None and only not in CLIP_RETRIEVAL_SETS:
        raise GaussAuditError(f"{option_name('only')} must be one of {', '.join(CLIP_RETRIEVAL_SETS)}; got {only!r}.")
    if split is not None and (not isinstance(split, str) or not split):
        raise GaussAuditError(f"{option_name('split')} takes a split name (train, test…); got {split!r}.")


def clip_retrieval_folder(folder: Path, only: str | None, notes: list[str]) -> Path | None:
    """The embedding folder to read when ``folder`` is a clip-retrieval output
    (None when it is not one)."""
    sets = clip_retrieval_sets(folder)
    if not sets:
        return None
    if only is None and len(sets) > 1:
        listing = ", ".join(f"{CLIP_RETRIEVAL_SETS[name]}/" for name in sets)
        raise GaussAuditError(
            f"{folder}: is a clip-retrieval output with {len(sets)} embedding sets ({listing}), each a dataset of "
            f"its own: audit one with {option_set('only', 'image')} or {option_set('only', 'text')}, or both side "
            "by side (gaussaudit scan or compare on the folder)."
        )
    name = only or next(iter(sets))
    if name not in sets:
        raise GaussAuditError(f"{folder}: is a clip-retrieval output without {CLIP_RETRIEVAL_SETS[name]}/ "
                              f"(it has: {', '.join(CLIP_RETRIEVAL_SETS[n] + '/' for n in sets)}).")
    notes.append(f"{folder}: clip-retrieval output, {name} embeddings ({CLIP_RETRIEVAL_SETS[name]}/); metadata/ "
                 "is not embeddings and was not read")
    return sets[name]


def split_of(path: Path, root: Path) -> str | None:
    """The Hugging Face split a parquet file of ``root`` belongs to, if its
    name or a folder on its way says so."""
    match = _SPLIT_FILE.match(path.name)
    if match:
        return match.group("split")
    for part in path.relative_to(root).parts[:-1]:
        if part.lower() in SPLIT_FOLDERS:
            return part
    return None


def select_split(root: Path, files: list[Path], split: str | None, notes: list[str]) -> list[Path]:
    """The files of ``split`` (every split when None), saying in ``notes`` which were read."""
    splits: dict[str, list[Path]] = {}
    for f in files:
        name = split_of(f, root)
        if name is not None:
            splits.setdefault(name, []).append(f)
    if not splits:
        if split is not None:
            raise GaussAuditError(f"{root}: has no Hugging Face splits (files named train-00000-of-00001.parquet, "
                                  f"or split folders such as train/); {option_name('split')} picks one of them.")
        return files
    counts = ", ".join(f"{name} ({len(fs)} file{'s' if len(fs) != 1 else ''})" for name, fs in splits.items())
    if split is None:
        notes.append(f"{root}: Hugging Face splits {counts}, all read as one dataset (pick one with "
                     f"{option_set('split', 'NAME')})")
        return files
    if split not in splits:
        raise GaussAuditError(f"{root}: has no split '{split}' (it has: {counts}).")
    notes.append(f"{root}: Hugging Face split '{split}' of {counts}")
    return splits[split]
