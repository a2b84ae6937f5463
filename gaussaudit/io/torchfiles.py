"""Files ``torch.save`` wrote, loaded without running their code
(``weights_only=True``), and what a refusal means: shared by the ``.pt``
embeddings reader and extract's checkpoint loader."""
from __future__ import annotations

import re

#: Signs in torch's and safetensors' messages that a file is not theirs at all (or damaged).
NOT_TORCH_FILE = ("Unsupported operand", "invalid load key", "PytorchStreamReader failed", "Ran out of input",
                  "not a zip file", "HeaderTooLarge", "Error while deserializing header")


def _head(path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(2)
    except OSError:
        return b""


def _is_raw_pickle(head: bytes) -> bool:
    """PROTO 0x80 and a protocol torch writes (2-5)."""
    return head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")


def _looks_like_a_pickle(path) -> bool:
    """torch.save's zip archive, or a raw pickle: a file torch refused for what
    it holds, not one it could not parse."""
    head = _head(path)
    return head == b"PK" or _is_raw_pickle(head)


#: Opcodes that store the stack's top in the memo and leave the stack as it was.
_MEMO_STORES = ("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT")


def _pickled_globals(path, max_bytes: int = 1 << 26) -> list[str] | None:
    """The callables a raw pickle file names (GLOBAL / STACK_GLOBAL opcodes), read
    with ``pickletools`` (which parses opcodes and runs nothing); None when the file
    does not parse as a pickle to its STOP opcode (random or damaged bytes). Only the
    first ``max_bytes`` are read: a pickle running past them counts by the names seen."""
    import io
    import pickletools

    named, pushed, memo = [], [], {}
    previous = None  # the string the last opcode pushed, if it pushed one
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError:
        return None
    # from memory, a random length field reads what remains instead of allocating its claim
    try:
        for op, arg, _ in pickletools.genops(io.BytesIO(data[:max_bytes])):
            string = None
            if op.name == "GLOBAL":
                named.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL":  # protocol 4: module and name are the two strings pushed before
                named.append(".".join(pushed[-2:]) if len(pushed) >= 2 else "?")
            elif "UNICODE" in op.name:
                string = arg
            elif op.name == "MEMOIZE":  # memo slots numbered by count
                memo[len(memo)] = previous
            elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = previous
            elif op.name in ("GET", "BINGET", "LONG_BINGET") and isinstance(memo.get(arg), str):
                string = memo[arg]
            if string is not None:
                pushed.append(string)
            if op.name == "STOP":
                return named
            if op.name not in _MEMO_STORES:
                previous = string
    except ValueError:  # pickletools' word for "not a pickle"
        pass
    return (named or None) if len(data) > max_bytes else None


def _torch_safe_globals() -> set[str]:
    """The callables torch's weights-only unpickler allows (OrderedDict, tensor rebuilders):
    naming only these, a pickle torch could not parse is not one that runs code."""
    try:
        from torch import _weights_only_unpickler

        return {str(name) for name in _weights_only_unpickler._get_allowed_globals()}
    except Exception:  # a private API: without it every named callable counts
        return set()


def refused_objects(path, exc: Exception) -> str | None:
    """When ``torch.load(weights_only=True)`` refused ``path`` for holding Python
    objects whose unpickling could run code: the objects named (" (os.system)")
    or ""; None when the refusal is of another kind (a damaged or foreign file)."""
    text = str(exc)
    if is_foreign_file(exc):
        # torch's safe unpickler stops at opcodes it lacks (protocol 4's FRAME, "Unsupported
        # operand 149") as it does at random bytes opening with 0x80: the file's own opcodes tell them apart
        if not _is_raw_pickle(_head(path)):
            return None
        named = [name for name in dict.fromkeys(_pickled_globals(path) or ()) if name not in _torch_safe_globals()]
        return f" ({', '.join(named[:3])})" if named else None
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
