"""The library's errors. Only entry points turn them into messages and exit codes."""


class RagError(Exception):
    """Base class: every error the library raises on purpose."""


class ConfigError(RagError):
    """A setting has a value we cannot use; the message lists the valid ones."""


class DocumentError(RagError):
    """One document could not be read. The indexer skips it and goes on."""


class IndexMissing(RagError):
    """No index has been built in the folder yet."""


class IndexIncompatible(RagError):
    """The index was built by another format version, embedder or chunker."""


class IndexCorrupt(RagError):
    """The index files do not match their manifest (truncated, edited, half-copied)."""


class IndexBusy(RagError):
    """Another process is building the same index."""


class ModelError(RagError):
    """A model could not be found, assembled or loaded."""
