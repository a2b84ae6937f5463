"""The one exception type a user of gaussaudit needs to catch."""


class GaussAuditError(ValueError):
    """Bad input or bad options: the message says what is wrong and how to fix it.

    The CLI prints the message (no traceback) and exits with status 2. Library
    users catch it to report the same message in their own way. It subclasses
    ``ValueError`` so code that already guards numeric input keeps working.
    """
