"""The one exception type a user of gaussaudit needs to catch, and how its
messages name an option: the way its user typed it, ``sample`` when the library
raised (``audit(x, sample=5)``), ``--sample`` when the CLI did (``gaussaudit scan
-n 5``). The CLI turns the second spelling on for the command it runs
(:func:`cli_spelling`); every message says :func:`option_name` or :func:`option_set`."""
from __future__ import annotations

import contextlib
import contextvars


class GaussAuditError(ValueError):
    """Bad input or bad options: the message says what is wrong and how to fix it.

    The CLI prints the message (no traceback) and exits with status 2. Library
    users catch it to report the same message in their own way. It subclasses
    ``ValueError`` so code that already guards numeric input keeps working.
    """


_CLI_SPELLING = contextvars.ContextVar("gaussaudit_cli_spelling", default=False)

#: Fields whose CLI flag is not ``--`` + the field with dashes.
_FLAGS = {"inputs": "--input", "json_path": "--json", "labels": "--label"}


@contextlib.contextmanager
def cli_spelling():
    """Within this block, errors name options as CLI flags (``--mv-sample``)."""
    token = _CLI_SPELLING.set(True)
    try:
        yield
    finally:
        _CLI_SPELLING.reset(token)


def option_name(field: str) -> str:
    """An option as the user wrote it: the library parameter or the CLI flag.

    Examples
    --------
    >>> option_name("mv_sample")
    'mv_sample'
    >>> with cli_spelling():
    ...     option_name("mv_sample")
    '--mv-sample'
    """
    if not _CLI_SPELLING.get():
        return field
    return _FLAGS.get(field, "--" + field.replace("_", "-"))


def option_set(field: str, value=True) -> str:
    """An option given a value: ``sample=0`` / ``--sample 0``; ``overwrite=True`` / ``--overwrite``.

    Examples
    --------
    >>> option_set("sample", 0), option_set("overwrite"), option_set("key", "NAME")
    ('sample=0', 'overwrite=True', "key='NAME'")
    >>> with cli_spelling():
    ...     option_set("sample", 0), option_set("overwrite"), option_set("key", "NAME")
    ('--sample 0', '--overwrite', '--key NAME')
    """
    if not _CLI_SPELLING.get():
        return f"{field}={value!r}"
    return option_name(field) if value is True else f"{option_name(field)} {value}"
