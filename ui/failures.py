"""What the page says and logs when a handler fails.

Owns one rule: a `RagError` is expected and its message (which names the fix) is shown;
any other error is shown by its type only, with the trace in the server log.
"""

import logging

from rag.errors import RagError


def error_text(exc: BaseException) -> str:
    """What a user is told about an error: a `RagError`'s message, else only its type.

    Example:
        >>> error_text(KeyError("/etc/passwd"))
        'Something went wrong: KeyError; see the server log'
    """
    if isinstance(exc, RagError):
        return str(exc)
    return f"Something went wrong: {type(exc).__name__}; see the server log"


def log_failure(log: logging.Logger, what: str, exc: BaseException) -> None:
    """Log a failed handler: a warning for a `RagError`, else an error with its trace."""
    if isinstance(exc, RagError):  # expected: its message names the fix
        log.warning("%s: %s", what, exc)
    else:
        log.error("%s failed", what, exc_info=exc)
