"""The exceptions seedrag raises, each with a message that names the fix.

Owns the error hierarchy only; it does not log or print. The CLI turns a
`RagError` into one line on stderr and exit code 1.
"""

from __future__ import annotations

import re

_URL_PASSWORD = re.compile(r"(?P<head>://[^:/@?#\s]*:)[^@/?#\s]*(?=@)")
_KW_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """A database URL or conninfo string with its password replaced by ``***``.

    Example:
        >>> redact_url("postgresql://app:s3cret@db:5432/rag")
        'postgresql://app:***@db:5432/rag'
        >>> redact_url("host=db password=s3cret dbname=rag")
        'host=db password=*** dbname=rag'
    """
    return _KW_PASSWORD.sub(r"\g<head>***", _URL_PASSWORD.sub(r"\g<head>***", url))


class RagError(Exception):
    """Base class for every error seedrag raises on purpose."""


class SettingsError(RagError, ValueError):
    """A setting has a value that cannot work."""


class SeedsNotFoundError(RagError):
    """The seeds folder does not exist or is not a folder."""


class EmptyCorpusError(RagError):
    """The seeds folder holds no readable document."""


class IndexNotFoundError(RagError):
    """No index has been built in the index folder."""


class IndexCorruptError(RagError):
    """Index files are missing, truncated or inconsistent with the manifest."""


class IndexStaleError(RagError):
    """The index was built with other settings or another model than requested."""


class SourceNotFoundError(RagError, KeyError):
    """A citation names a source the index does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class QuestionError(RagError, ValueError):
    """The question cannot be answered as asked (for example, it is empty)."""


class ModelLoadError(RagError):
    """The embedding model could not be loaded from its local folder."""


class IndexWriteError(RagError):
    """The index could not be written (disk full, read-only folder); nothing partial stays."""


class StoreUnavailableError(RagError):
    """The index's database cannot be reached or lacks what seedrag needs (pgvector)."""


class ModelError(RagError):
    """The shipped answer model is missing, damaged or cannot run here."""


class DocumentError(RagError, ValueError):
    """A document cannot be added to or removed from the seeds folder as asked."""
