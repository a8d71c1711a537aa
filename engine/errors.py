"""Errors the engine raises. Their message is meant for the user, as is."""


class EngineError(Exception):
    """Base of every error the engine reports to its callers."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgument(EngineError):
    """The caller asked for something malformed; nothing was changed."""


class NotFound(EngineError):
    """The named object does not exist."""


class Conflict(EngineError):
    """The request clashes with existing state (a name taken, an image in use...)."""


class RegistryError(EngineError):
    """A registry refused or failed a request."""


class RuntimeFailure(EngineError):
    """The OCI runtime, a mount or a kernel facility failed."""
