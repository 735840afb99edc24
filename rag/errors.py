"""The exceptions seedrag raises, each with a message that names the fix.

Owns the error hierarchy only; it does not log or print. The CLI turns a
`RagError` into one line on stderr and exit code 1.
"""

from __future__ import annotations


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
