"""Image references: ``[registry[:port]/]path[:tag][@digest]``.

Follows Docker's grammar (distribution/reference) and its normalisation, so that
what a user types here means what it means to ``docker``:

* a first component is a registry only if it contains ``.`` or ``:`` or is
  ``localhost`` (otherwise ``ns/app`` would be a host called "ns");
* no registry means ``docker.io``; ``index.docker.io`` is the same place;
* a one-component name on Docker Hub gets ``library/``;
* no tag and no digest means ``:latest``; a digest alone means no tag.

Errors are ``InvalidArgument`` with a message naming the part that is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from engine.errors import InvalidArgument

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$"
)
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_SHA256 = re.compile(r"^sha256:[a-f0-9]{64}$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")
_SPACE = re.compile(r"\s")
NAME_MAX = 255


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Fully qualified name without tag or digest: ``docker.io/library/busybox``."""
        return f"{self.registry}/{self.repository}"

    @property
    def familiar_name(self) -> str:
        """The name as ``docker images`` shows it: ``busybox``, ``ns/app``, ``localhost:5000/app``."""
        if self.registry == DEFAULT_REGISTRY:
            if self.repository.startswith("library/") and self.repository.count("/") == 1:
                return self.repository[len("library/") :]
            return self.repository
        return self.name

    @property
    def familiar(self) -> str:
        """Short form with tag and/or digest: ``busybox:latest``, ``localhost:5000/app@sha256:...``."""
        return self.familiar_name + self._suffix()

    @property
    def api_host(self) -> str:
        """The host to contact for this registry."""
        return DOCKER_HUB_API_HOST if self.registry == DEFAULT_REGISTRY else self.registry

    def with_tag(self, tag: str) -> Reference:
        if not _TAG.match(tag):
            raise InvalidArgument(f"invalid tag {tag!r}: {_TAG_RULE}")
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        check_digest(digest)
        return replace(self, digest=digest)

    def without_digest(self) -> Reference:
        return replace(self, digest=None)

    def _suffix(self) -> str:
        out = ""
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def __str__(self) -> str:
        return self.name + self._suffix()


_TAG_RULE = "a tag is up to 128 letters, digits, '_', '.' or '-' and cannot start with '.' or '-'"


def check_digest(digest: str) -> str:
    """Validate a digest; only sha256 is accepted for storage. Returns it unchanged."""
    if not _DIGEST.match(digest or ""):
        raise InvalidArgument(f"invalid digest {digest!r}: expected 'sha256:' followed by 64 hex characters")
    if not _SHA256.match(digest):
        if digest.startswith("sha256:"):
            raise InvalidArgument(
                f"invalid digest {digest!r}: a sha256 digest has exactly 64 lowercase hex characters"
            )
        raise InvalidArgument(f"unsupported digest algorithm in {digest!r}: only sha256 is supported")
    return digest


def is_image_id(text: str) -> bool:
    """True for a full image id, with or without ``sha256:``."""
    return bool(_HEX64.match(text.removeprefix("sha256:")))


def split_domain(name: str) -> tuple[str, str]:
    """Split a name into (registry, path) the way Docker decides what is a host."""
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        registry, path = first, rest
    else:
        registry, path = DEFAULT_REGISTRY, name
    if registry in _HUB_ALIASES:
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    return registry, path


def parse(text: str, default_tag: bool = True) -> Reference:
    """Parse and normalise an image reference.

    With ``default_tag`` a reference without tag or digest gets ``latest``.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument("invalid reference format: the image reference is empty")
    if _SPACE.search(text):
        raise InvalidArgument(f"invalid reference format: {text!r} contains whitespace")
    remainder, digest = text, None
    if "@" in remainder:
        remainder, _, digest = remainder.partition("@")
        if "@" in digest:
            raise InvalidArgument(f"invalid reference format: {text!r} has more than one '@'")
        check_digest(digest)
    tag = None
    # A ':' after the last '/' starts the tag; one before it is a registry port.
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > last_slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG.match(tag):
            raise InvalidArgument(f"invalid reference format: invalid tag {tag!r} in {text!r}: {_TAG_RULE}")
    if not remainder:
        raise InvalidArgument(f"invalid reference format: {text!r} has no repository name")
    if _HEX64.match(remainder) and tag is None and digest is None:
        raise InvalidArgument(
            f"invalid repository name ({remainder}), cannot specify 64-byte hexadecimal strings"
        )
    registry, path = split_domain(remainder)
    if registry != DEFAULT_REGISTRY and not _DOMAIN.match(registry):
        raise InvalidArgument(f"invalid reference format: invalid registry host {registry!r} in {text!r}")
    for component in path.split("/"):
        if not component:
            raise InvalidArgument(f"invalid reference format: empty path component in {text!r}")
        if not _PATH_COMPONENT.match(component):
            if component.lower() != component and _PATH_COMPONENT.match(component.lower()):
                raise InvalidArgument(
                    f"invalid reference format: repository name must be lowercase ({text!r})"
                )
            raise InvalidArgument(
                f"invalid reference format: invalid path component {component!r} in {text!r}: "
                "use lowercase letters, digits and single '.', '_', '__' or '-' separators"
            )
    if len(registry) + 1 + len(path) > NAME_MAX:
        raise InvalidArgument(f"invalid reference format: repository name is longer than {NAME_MAX} characters")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(registry=registry.lower() if registry == DEFAULT_REGISTRY else registry,
                     repository=path, tag=tag, digest=digest)


def parse_repository(text: str) -> Reference:
    """Parse a name that must carry neither tag nor digest (``docker push REPO``, catalog)."""
    ref = parse(text, default_tag=False)
    if ref.tag or ref.digest:
        raise InvalidArgument(f"{text!r} must be a repository name without tag or digest")
    return ref
