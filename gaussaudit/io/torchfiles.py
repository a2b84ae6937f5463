"""Files ``torch.save`` wrote, loaded without running their code
(``weights_only=True``), and what a refusal means: shared by the ``.pt``
embeddings reader and extract's checkpoint loader."""
from __future__ import annotations

import re

#: Signs in torch's and safetensors' messages that a file is not theirs at all (or damaged).
NOT_TORCH_FILE = ("Unsupported operand", "invalid load key", "PytorchStreamReader failed", "Ran out of input",
                  "not a zip file", "HeaderTooLarge", "Error while deserializing header")


def _looks_like_a_pickle(path) -> bool:
    """torch.save's zip archive, or a pickle (protocol 2 or later): a file torch
    refused for what it holds, not one it could not parse (PROTO 0x80 and a protocol torch writes)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
    except OSError:
        return False
    return head == b"PK" or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"))


def refused_objects(path, exc: Exception) -> str | None:
    """When ``torch.load(weights_only=True)`` refused ``path`` for holding Python
    objects whose unpickling could run code: the objects named (" (os.system)")
    or ""; None when the refusal is of another kind (a damaged or foreign file)."""
    text = str(exc)
    if is_foreign_file(exc):
        # random bytes opening with 0x80 parse as a pickle until a byte that is no opcode:
        # torch then says both "Weights only load failed" and "Unsupported operand"
        return None
    if ("Weights only load failed" in text or "Unsupported global" in text) and _looks_like_a_pickle(path):
        named = re.search(r"GLOBAL ([\w.]+)", text)
        return f" ({named.group(1)})" if named else ""
    return None


def is_foreign_file(exc: Exception) -> bool:
    """Whether torch's error says the file is not one torch.save (or safetensors) wrote, or is damaged."""
    return any(sign in str(exc) for sign in NOT_TORCH_FILE) or isinstance(exc, EOFError)


def load_tensors(path):
    """``torch.load`` onto the CPU, tensors only, memory-mapped where the format allows."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap can only be used" not in str(exc):
            raise
        # torch's legacy (pre-1.6, non-zip) format cannot be mapped
        return torch.load(path, map_location="cpu", weights_only=True)
