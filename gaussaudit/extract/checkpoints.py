"""Reading checkpoint files: safely (``torch.load(weights_only=True)``), with a
message a user can act on when the file is not what it should be, and finding
the state dict inside the wrappers training code puts around it."""
from __future__ import annotations

import hashlib
import os
import warnings

import torch

from gaussaudit.errors import GaussAuditError
from gaussaudit.extract.models import check_checkpoint_path
from gaussaudit.io.torchfiles import is_foreign_file, refused_objects

#: Keys under which training code stores the model's state dict, most specific first.
STATE_DICT_KEYS = (
    "state_dict", "model_state_dict", "model_state", "model", "net", "network",
    "module", "encoder", "backbone", "weights", "params",
)


def sha256_file(path: str | os.PathLike, block: int = 1 << 22) -> str:
    """SHA-256 of a file, read in 4 MB blocks (checkpoints can be gigabytes).

    Remembered per (path, size, modification time) for the life of the process:
    a library user extracting several folders with one checkpoint hashes it once.
    """
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(block):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


_HASHES: dict[tuple[str, int, int], str] = {}


def read_checkpoint(path: str | os.PathLike):
    """Load a checkpoint onto the CPU without running pickled code.

    ``.safetensors`` files are read with safetensors; anything else with
    ``torch.load(weights_only=True)``, which refuses arbitrary Python objects.
    """
    path = check_checkpoint_path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        with warnings.catch_warnings():  # torch warns about pickle protocols it then handles, or refuses
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for a bad file
        raise GaussAuditError(unreadable_checkpoint_message(path, exc)) from None


def unreadable_checkpoint_message(path, exc: Exception) -> str:
    """The message for a checkpoint torch cannot load (safely)."""
    text = str(exc)
    what = refused_objects(path, exc)
    if what is not None:
        # torch's own text ends on "re-run with weights_only=False": advice that runs the file's code
        return (
            f"{path}: holds Python objects or code besides tensors{what}, so it was not loaded: gaussaudit loads "
            "checkpoints with torch.load(weights_only=True), and unpickling this file could run code. If you "
            "trust it, save its state dict alone and pass that: python -c \"import torch; c = torch.load('IN', "
            "weights_only=False); torch.save(c.get('state_dict', c), 'OUT.pt')\""
        )
    if is_foreign_file(exc):
        reason = "not a file torch.save or safetensors wrote, or a damaged one"
    else:
        # torch's messages run to paragraphs; keep the first line.
        reason = (text.strip().splitlines() or [type(exc).__name__])[0][:200]
    return f"{path}: is not a readable checkpoint ({reason})."


def find_state_dict(checkpoint, source: str) -> tuple[dict, str]:
    """The state dict inside ``checkpoint`` and where it was found.

    Accepts a bare state dict, or one under ``state_dict`` / ``model`` /
    ``model_state_dict`` / … (one or two levels deep, e.g. ``{"model":
    {"state_dict": …}}``). Non-tensor entries beside the tensors (a step
    counter in a state dict) are dropped.

    Returns
    -------
    state_dict : dict of str to Tensor
    where : str
        ``"the file itself"`` or ``"checkpoint['state_dict']"``-style path.
    """
    def tensors_of(obj) -> dict | None:
        if not isinstance(obj, dict):
            return None
        tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
        # Most of a real state dict is tensors; a wrapper holds a few at most.
        return tensors if tensors and len(tensors) >= 0.5 * len(obj) else None

    found = tensors_of(checkpoint)
    if found is not None:
        return found, "the file itself"
    if isinstance(checkpoint, dict):
        for key in STATE_DICT_KEYS:
            inner = checkpoint.get(key)
            found = tensors_of(inner)
            if found is not None:
                return found, f"checkpoint['{key}']"
            if isinstance(inner, dict):
                for key2 in STATE_DICT_KEYS:
                    found = tensors_of(inner.get(key2))
                    if found is not None:
                        return found, f"checkpoint['{key}']['{key2}']"
        listing = ", ".join(map(str, list(checkpoint)[:10]))
        raise GaussAuditError(
            f"{source}: holds no state dict (a mapping of names to tensors); its top-level keys are: {listing}."
        )
    raise GaussAuditError(f"{source}: holds a {type(checkpoint).__name__}, not a state dict.")
