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


class NoSpace(EngineError):
    """The disk under the engine root is full; what failed changed nothing."""

    def __init__(self, root, needed: int | None = None, free: int | None = None):
        from engine.base.space import free_bytes

        self.root, self.needed = str(root), needed
        self.free = free_bytes(self.root) if free is None else free
        wanted = f"needed ~{human_size(needed)}, " if needed else ""
        super().__init__(f"no space left on {self.root} ({wanted}free {human_size(self.free)})")


def human_size(n: int) -> str:
    """Docker's decimal units, 3 significant digits (``1.5MB``)."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.3g}{unit}"
        size /= 1000
    return f"{n}B"


def from_os_error(exc: OSError, root) -> EngineError:
    """What a user is told of an OSError that escaped an operation: one line."""
    from engine.base.space import is_no_space

    if is_no_space(exc):
        return NoSpace(root)
    text = exc.strerror or str(exc)
    return EngineError(f"{text}: {exc.filename}" if exc.filename else text)
