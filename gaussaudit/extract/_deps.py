"""The extract extra is optional: ``gaussaudit scan`` never imports torch, and
``gaussaudit extract`` says what to install when torch and friends are missing."""
from __future__ import annotations

import importlib
import importlib.util

from gaussaudit.errors import GaussAuditError

INSTALL_HINT = "pip install 'gaussaudit[extract]'"

#: (module imported, distribution that provides it)
_BASE = (("torch", "torch"), ("torchvision", "torchvision"), ("PIL", "pillow"))
_OPEN_CLIP = (("open_clip", "open_clip_torch"),)


def require_extract_packages(open_clip: bool = False) -> None:
    """Import the extract extra's packages, or fail with the command that installs them.

    Parameters
    ----------
    open_clip : bool
        Also require ``open_clip`` (CLIP models; SimCLR ResNets do without it).

    Raises
    ------
    GaussAuditError
        Naming the missing distributions and ``pip install 'gaussaudit[extract]'``.
    """
    # find_spec looks for the package without importing it (torch takes seconds).
    missing = [distribution for module, distribution in _BASE + (_OPEN_CLIP if open_clip else ())
               if not _installed(module)]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise GaussAuditError(
            f"gaussaudit extract needs {', '.join(missing)}, which {verb} not installed. "
            f"Install the extract extra: {INSTALL_HINT}"
        )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module whose __spec__ is unset
        return False


def open_clip_available() -> bool:
    return _installed("open_clip")
