"""HTTP client for the OCI distribution API (``/v2/``), with Docker's auth flows.

One ``RegistryClient`` talks to one registry host. It discovers how to
authenticate from the ``/v2/`` challenge (anonymous, Basic, or the Bearer token
flow), caches tokens per (realm, service, scopes) until they expire, and turns
registry errors into ``RegistryError`` messages that name the registry and the
repository. Credentials never appear in messages or logs.

The client moves bytes only; what an image is, and what to store, is the
business of ``engine.distribution.transfer``.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

from engine.errors import NotFound, RegistryError

if TYPE_CHECKING:
    from engine.distribution.credentials import Credentials

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SCHEMA1_TYPES = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
# distribution 2.8 rewrites to schema1 unless schema2/list are accepted, and
# refuses OCI manifests unless the OCI type is: always send all four.
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))

DOCKER_HUB_HOSTS = {"docker.io", "index.docker.io", "registry-1.docker.io"}
DOCKER_HUB_API = "registry-1.docker.io"
USER_AGENT = "berth/0.1"
READ_CHUNK = 1 << 20
# Blobs up to this size go up in one PUT; bigger ones are PATCHed in chunks.
MONOLITHIC_LIMIT = 32 << 20
CHUNK_SIZE = 64 << 20
# A manifest is a few KiB; a registry serving more is broken or hostile (docker uses 4 MiB too).
MANIFEST_LIMIT = 4 << 20
TOKEN_DEFAULT_TTL = 60
TOKEN_MARGIN = 10

class RegistryNotFound(RegistryError, NotFound):
    """The registry says a repository, manifest or blob does not exist."""


class TransferError(RegistryError):
    """The connection failed or broke off: worth a retry, unlike a refusal or a digest mismatch."""


class RegistryUnauthorized(RegistryError):
    """Missing or wrong credentials (401), or access denied (403)."""


def api_host(host: str) -> str:
    """The host to contact: Docker Hub's names all mean ``registry-1.docker.io``."""
    host = host.strip().lower() if host.strip().lower() in DOCKER_HUB_HOSTS else host.strip()
    return DOCKER_HUB_API if host in DOCKER_HUB_HOSTS else host


def is_loopback(host: str) -> bool:
    name = urlsplit(f"//{host}").hostname or host
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def listed_insecure(host: str) -> bool:
    """Registries named in ``$BERTH_INSECURE_REGISTRIES`` (comma-separated), like dockerd's --insecure-registry."""
    listed = {h.strip() for h in os.environ.get("BERTH_INSECURE_REGISTRIES", "").split(",") if h.strip()}
    return host in listed


@dataclass
class Challenge:
    scheme: str  # "bearer" or "basic", lowercased
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(header: str) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` (RFC 7235): ``Bearer realm="..",service="..",scope=".."``."""
    challenges: list[Challenge] = []
    i, n = 0, len(header or "")
    text = header or ""
    while i < n:
        while i < n and text[i] in " ,":
            i += 1
        start = i
        while i < n and text[i] not in " ,=":
            i += 1
        token = text[start:i]
        if not token:
            break
        if i < n and text[i] == "=":
            # A param belongs to the challenge before it.
            i += 1
            value, i = _read_value(text, i)
            if challenges:
                challenges[-1].params[token.lower()] = value
            continue
        challenges.append(Challenge(token.lower()))
    return challenges


def _read_value(text: str, i: int) -> tuple[str, int]:
    if i < len(text) and text[i] == '"':
        i += 1
        out = []
        while i < len(text) and text[i] != '"':
            if text[i] == "\\" and i + 1 < len(text):
                i += 1
            out.append(text[i])
            i += 1
        return "".join(out), i + 1
    start = i
    while i < len(text) and text[i] not in ", ":
        i += 1
    return text[start:i], i


def repo_scope(repository: str, actions: str = "pull") -> str:
    return f"repository:{repository}:{actions}"


CATALOG_SCOPE = "registry:catalog:*"


@dataclass
class _Token:
    value: str
    expires: float


class RegistryClient:
    """A client for one registry. Thread-safe: layers are fetched from several threads."""

    def __init__(self, host: str, credentials: Credentials | None = None, insecure: bool | None = None,
                 timeout: float = 60.0, session: requests.Session | None = None):
        self.host = api_host(host)
        self.credentials = credentials
        # Loopback registries speak plain http. A registry marked insecure gets what docker
        # does: https without certificate checks first, then http (decided at the ping).
        explicit = insecure is True or (insecure is None and listed_insecure(self.host))
        self.insecure = explicit or (insecure is None and is_loopback(self.host))
        self._probe_tls = explicit
        self.base_url = f"{'http' if self.insecure and not explicit else 'https'}://{self.host}"
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self._lock = threading.Lock()
        self._ping_lock = threading.Lock()
        self._challenge: Challenge | None = None
        self._pinged = False
        self._tokens: dict[tuple, _Token] = {}
        self._token_locks: dict[tuple, threading.Lock] = {}
        self.token_requests = 0  # for tests and diagnostics

    def __repr__(self) -> str:
        return f"RegistryClient({self.host!r})"

    # -- auth ---------------------------------------------------------------

    def ping(self) -> None:
        """GET /v2/ to learn the auth challenge. 200 means no auth is needed."""
        with self._ping_lock:
            if not self._pinged:
                self._ping()

    def _ping(self) -> None:
        if self._probe_tls:
            self._choose_scheme()
        response = self._send("GET", "/v2/", None, auth=False)
        if response.status_code == 401:
            challenges = parse_challenges(response.headers.get("WWW-Authenticate", ""))
            bearer = [c for c in challenges if c.scheme == "bearer" and c.params.get("realm")]
            basic = [c for c in challenges if c.scheme == "basic"]
            if not (bearer or basic):
                raise RegistryError(f"registry {self.host} asks for an authentication scheme Berth "
                                    "does not support")
            self._challenge = (bearer or basic)[0]
        elif response.status_code != 200:
            raise self._error(response, what="registry API")
        self._pinged = True

    def _choose_scheme(self) -> None:
        """For an insecure registry: https with an unverified certificate if it answers, else http."""
        self.session.verify = False
        try:
            self.session.get(f"https://{self.host}/v2/", timeout=min(self.timeout, 10)).close()
            self.base_url = f"https://{self.host}"
        except requests.RequestException:
            self.base_url = f"http://{self.host}"
        self._probe_tls = False

    def login(self) -> None:
        """Check the credentials, the way ``docker login`` does (a token with no scope, or Basic on /v2/)."""
        self.ping()
        if self._challenge is None:
            return  # the registry needs no credentials at all
        if self._challenge.scheme == "bearer":
            self._token([], force=True)
        response = self._send("GET", "/v2/", [], auth=True)
        if response.status_code != 200:
            raise self._error(response, what="login")

    def _auth_header(self, scopes: list[str] | None) -> dict[str, str]:
        challenge = self._challenge
        if challenge is None or scopes is None:
            return {}
        if challenge.scheme == "basic":
            if self.credentials and self.credentials.username:
                return {"Authorization": _basic(self.credentials.username, self.credentials.password)}
            return {}
        return {"Authorization": f"Bearer {self._token(scopes)}"}

    def _token(self, scopes: list[str], force: bool = False) -> str:
        challenge = self._challenge
        assert challenge is not None
        realm = challenge.params["realm"]
        service = challenge.params.get("service", "")
        key = (realm, service, tuple(sorted(scopes)))
        with self._lock:
            key_lock = self._token_locks.setdefault(key, threading.Lock())
        # One fetch per key: parallel layer transfers wait for it instead of each asking.
        with key_lock:
            cached = self._tokens.get(key)
            if cached and cached.expires > time.monotonic() and not force:
                return cached.value
            token = self._fetch_token(realm, service, scopes)
            self._tokens[key] = token
            return token.value

    def _fetch_token(self, realm: str, service: str, scopes: list[str]) -> _Token:
        creds = self.credentials
        params: list[tuple[str, str]] = []
        if service:
            params.append(("service", service))
        params.extend(("scope", s) for s in scopes)
        headers = {}
        self.token_requests += 1
        try:
            if creds and creds.identity_token:
                # An identity token from a previous login: the OAuth2 refresh grant, as docker does.
                data = params + [("grant_type", "refresh_token"), ("refresh_token", creds.identity_token),
                                 ("client_id", "berth")]
                response = self.session.post(realm, data=data, timeout=self.timeout)
            else:
                if creds and creds.username:
                    params.append(("account", creds.username))
                    headers["Authorization"] = _basic(creds.username, creds.password)
                response = self.session.get(realm, params=params, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RegistryError(f"cannot reach the token service of {self.host} ({_host_of(realm)}): "
                                f"{_reason(exc)}") from None
        if response.status_code in (401, 403):
            if creds and (creds.username or creds.identity_token):
                raise RegistryUnauthorized(f"unauthorized: incorrect username or password for {self.host}")
            raise RegistryUnauthorized(f"unauthorized: {self.host} requires credentials for "
                                       f"{_describe_scopes(scopes)}")
        if response.status_code != 200:
            raise RegistryError(f"the token service of {self.host} answered HTTP {response.status_code}")
        try:
            body = response.json()
            value = body.get("token") or body.get("access_token")
            ttl = int(body.get("expires_in") or TOKEN_DEFAULT_TTL)
        except (ValueError, TypeError, AttributeError):
            value, ttl = None, 0
        if not value:
            raise RegistryError(f"the token service of {self.host} returned no token")
        return _Token(value, time.monotonic() + max(ttl - TOKEN_MARGIN, ttl / 2))

    # -- requests -----------------------------------------------------------

    def _url(self, path: str) -> str:
        return urljoin(self.base_url + "/", path)

    def _send(self, method: str, path: str, scopes: list[str] | None, auth: bool = True,
              **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if auth:
            headers.update(self._auth_header(scopes))
        kwargs.setdefault("timeout", self.timeout)
        try:
            return self.session.request(method, self._url(path), headers=headers, **kwargs)
        except requests.RequestException as exc:
            raise TransferError(f"cannot reach registry {self.host}: {_reason(exc)}") from None

    def request(self, method: str, path: str, scopes: list[str], repository: str | None = None,
                ok: Iterable[int] = (200,), what: str = "", retry_body: bool = True,
                **kwargs) -> requests.Response:
        """Send an authenticated request; on 401 with a new challenge, get a fresh token and retry once."""
        self.ping()
        response = self._send(method, path, scopes, **kwargs)
        if response.status_code == 401 and retry_body:
            extra = [c for c in parse_challenges(response.headers.get("WWW-Authenticate", ""))
                     if c.scheme == "bearer" and c.params.get("realm")]
            if extra and self._challenge is None:
                self._challenge = extra[0]  # /v2/ was open but this repository is not
            if extra and self._challenge is not None and self._challenge.scheme == "bearer":
                wanted = extra[0].params.get("scope", "")
                scopes = sorted(set(scopes) | {s for s in wanted.split(" ") if s})
                self._token(scopes, force=True)
                response.close()
                response = self._send(method, path, scopes, **kwargs)
        if response.status_code not in ok:
            err = self._error(response, repository=repository, what=what)
            response.close()
            raise err
        return response

    def _error(self, response: requests.Response, repository: str | None = None, what: str = "") -> RegistryError:
        """A user-facing error for a failed response, naming registry and repository."""
        status = response.status_code
        code, message = "", ""
        try:
            errors = response.json().get("errors") or []
            if errors:
                code = str(errors[0].get("code", "")).upper()
                message = str(errors[0].get("message", ""))
        except (ValueError, AttributeError):
            pass
        where = f"{self.host}/{repository}" if repository else self.host
        subject = f"{what} on {where}" if what else where
        detail = f" ({message})" if message else ""
        if status == 401 or code == "UNAUTHORIZED":
            if self.credentials and (self.credentials.username or self.credentials.identity_token):
                text = f"unauthorized: {subject}: incorrect username or password, or no access"
            else:
                text = f"unauthorized: authentication required for {subject}"
            err: RegistryError = RegistryUnauthorized(text)
        elif status == 403 or code == "DENIED":
            err = RegistryUnauthorized(f"denied: requested access to {subject} is denied")
        elif status == 429 or code == "TOOMANYREQUESTS":
            err = RegistryError(f"toomanyrequests: {self.host} says too many requests{detail}; retry later")
        elif code == "MANIFEST_UNKNOWN" or (status == 404 and "manifest" in what):
            err = RegistryNotFound(f"manifest unknown: {subject} not found")
        elif code == "NAME_UNKNOWN":
            err = RegistryNotFound(f"name unknown: repository {repository or ''} not found on {self.host}")
        elif code == "BLOB_UNKNOWN" or (status == 404 and "blob" in what):
            err = RegistryNotFound(f"blob unknown: {subject} not found")
        elif status == 404:
            err = RegistryNotFound(f"not found: {subject}{detail}")
        elif status == 405 or code == "UNSUPPORTED":
            err = RegistryError(f"unsupported: {self.host} does not allow {what or 'this operation'}"
                                f"{' (deletes are disabled on this registry)' if 'delete' in what else ''}")
        elif code:
            err = RegistryError(f"{code.lower()}: {subject}{detail}")
        else:
            err = RegistryError(f"{subject}: registry answered HTTP {status}")
        err.status = status  # type: ignore[attr-defined]
        err.code = code  # type: ignore[attr-defined]
        return err

    # -- manifests ----------------------------------------------------------

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str, str]:
        """Return (exact bytes, media type, digest of those bytes). Checks a digest reference."""
        response = self.request("GET", f"/v2/{repository}/manifests/{reference}", [repo_scope(repository)],
                                repository, what=f"manifest {reference}", headers={"Accept": ACCEPT},
                                stream=True)
        data = response.raw.read(MANIFEST_LIMIT + 1, decode_content=True)
        response.close()
        if len(data) > MANIFEST_LIMIT:
            raise RegistryError(f"{self.host}/{repository} served a manifest for {reference} larger than "
                                f"{MANIFEST_LIMIT >> 20} MiB; refusing it")
        digest = sha256_digest(data)
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        claimed = response.headers.get("Docker-Content-Digest")
        expected = reference if reference.startswith("sha256:") else claimed
        if expected and expected.startswith("sha256:") and expected != digest:
            raise RegistryError(
                f"digest mismatch: {self.host}/{repository} served a manifest for {reference} whose "
                f"content is {digest}, not {expected}; refusing it")
        return data, media_type, digest

    def head_manifest(self, repository: str, reference: str) -> tuple[str, str, int] | None:
        """(digest, media type, size), or None if the registry has no such manifest."""
        response = self.request("HEAD", f"/v2/{repository}/manifests/{reference}", [repo_scope(repository)],
                                repository, ok=(200, 404), what=f"manifest {reference}",
                                headers={"Accept": ACCEPT})
        if response.status_code == 404:
            return None
        return (response.headers.get("Docker-Content-Digest", ""),
                response.headers.get("Content-Type", "").split(";")[0].strip(),
                int(response.headers.get("Content-Length") or 0))

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        response = self.request("PUT", f"/v2/{repository}/manifests/{reference}",
                                [repo_scope(repository, "pull,push")], repository, ok=(200, 201, 202),
                                what=f"manifest {reference}", data=data,
                                headers={"Content-Type": media_type})
        digest = sha256_digest(data)
        claimed = response.headers.get("Docker-Content-Digest")
        if claimed and claimed != digest:
            raise RegistryError(f"{self.host}/{repository} stored the manifest under {claimed}, "
                                f"but its content is {digest}")
        return digest

    def delete_manifest(self, repository: str, digest: str) -> None:
        self.request("DELETE", f"/v2/{repository}/manifests/{digest}", [repo_scope(repository, "delete")],
                     repository, ok=(200, 202), what=f"delete of manifest {digest}")

    # -- blobs --------------------------------------------------------------

    def blob_size(self, repository: str, digest: str, push: bool = False) -> int | None:
        """Size of a blob the registry has in this repository, or None."""
        scope = repo_scope(repository, "pull,push" if push else "pull")
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", [scope], repository,
                                ok=(200, 404), what=f"blob {digest}")
        if response.status_code == 404:
            return None
        return int(response.headers.get("Content-Length") or 0)

    def open_blob(self, repository: str, digest: str) -> requests.Response:
        """A streaming response for a blob; redirects to storage are followed without our credentials."""
        return self.request("GET", f"/v2/{repository}/blobs/{digest}", [repo_scope(repository)], repository,
                            what=f"blob {digest}", stream=True)

    def iter_blob(self, repository: str, digest: str, chunk_size: int = READ_CHUNK,
                  verify: bool = True) -> Iterator[bytes]:
        """Yield a blob's bytes; raises RegistryError at the end if they don't match ``digest``.

        ``verify=False`` is for callers that hash the bytes anyway (then call ``check_blob``).
        """
        hasher = hashlib.sha256() if verify else None
        with self.open_blob(repository, digest) as response:
            try:
                for chunk in response.iter_content(chunk_size):
                    if hasher:
                        hasher.update(chunk)
                    yield chunk
            except requests.RequestException as exc:
                raise TransferError(f"download of {digest[:19]} from {self.host}/{repository} was "
                                    f"interrupted: {_reason(exc)}") from None
        if hasher:
            self.check_blob(repository, digest, "sha256:" + hasher.hexdigest())

    def check_blob(self, repository: str, digest: str, actual: str) -> None:
        if actual != digest:
            raise RegistryError(f"digest mismatch: {self.host}/{repository} served blob {digest} "
                                f"with content {actual}; refusing it")

    def get_blob(self, repository: str, digest: str) -> bytes:
        return b"".join(self.iter_blob(repository, digest))

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> str | None:
        """Cross-repository mount. Returns None if mounted, else the upload location to use."""
        scopes = [repo_scope(repository, "pull,push"), repo_scope(from_repository)]
        query = urlencode({"mount": digest, "from": from_repository})
        response = self.request("POST", f"/v2/{repository}/blobs/uploads/?{query}", scopes, repository,
                                ok=(201, 202), what=f"mount of blob {digest[:19]}")
        response.close()
        if response.status_code == 201:
            return None
        return self._location(response, repository)

    def start_upload(self, repository: str) -> str:
        response = self.request("POST", f"/v2/{repository}/blobs/uploads/",
                                [repo_scope(repository, "pull,push")], repository, ok=(202,),
                                what="blob upload", headers={"Content-Length": "0"})
        response.close()
        return self._location(response, repository)

    def upload_blob(self, repository: str, digest: str, size: int, open_source: Callable[[], BinaryIO],
                    location: str | None = None, progress: Callable[[int], None] | None = None,
                    chunk_size: int = CHUNK_SIZE, monolithic_limit: int = MONOLITHIC_LIMIT) -> None:
        """Upload a blob: POST (unless ``location`` is given), then one PUT or PATCH chunks and a PUT.

        ``open_source`` returns a fresh file object positioned at the start.
        """
        scopes = [repo_scope(repository, "pull,push")]
        location = location or self.start_upload(repository)
        done = 0
        with open_source() as source:
            if size > monolithic_limit:
                while done < size:
                    n = min(chunk_size, size - done)
                    body = _counting(source, n, progress, done)
                    response = self.request(
                        "PATCH", location, scopes, repository, ok=(202, 204), what="blob upload",
                        retry_body=False, data=body,
                        headers={"Content-Type": "application/octet-stream", "Content-Length": str(n),
                                 "Content-Range": f"{done}-{done + n - 1}"})
                    response.close()
                    end = response.headers.get("Range", "")
                    if end and end.rpartition("-")[2].isdigit() and int(end.rpartition("-")[2]) != done + n - 1:
                        raise RegistryError(f"{self.host}/{repository} acknowledged bytes {end} of an "
                                            f"upload, expected 0-{done + n - 1}")
                    location = self._location(response, repository, default=location)
                    done += n
                body, length = b"", 0
            else:
                body, length = _counting(source, size, progress, 0), size
            response = self.request(
                "PUT", _with_query(location, digest=digest), scopes, repository, ok=(201, 204),
                what=f"upload of blob {digest[:19]}", retry_body=False, data=body,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(length)})
            response.close()
        claimed = response.headers.get("Docker-Content-Digest")
        if claimed and claimed != digest:
            raise RegistryError(f"{self.host}/{repository} stored a blob as {claimed}, expected {digest}")

    def _location(self, response: requests.Response, repository: str, default: str | None = None) -> str:
        location = response.headers.get("Location") or default
        if not location:
            raise RegistryError(f"{self.host}/{repository} started an upload without a Location")
        # Relative or absolute: both are resolved against the registry's URL.
        return urljoin(self.base_url + "/", location)

    # -- listings -----------------------------------------------------------

    def _paginate(self, path: str, key: str, scopes: list[str], repository: str | None,
                  page_size: int | None, what: str) -> Iterator[str]:
        url: str | None = path if page_size is None else _with_query(path, n=str(page_size))
        while url:
            response = self.request("GET", url, scopes, repository, what=what)
            try:
                items = response.json().get(key) or []
            except ValueError:
                raise RegistryError(f"{self.host} returned a malformed {what}") from None
            yield from items
            url = _next_link(response.headers.get("Link", ""))

    def catalog(self, page_size: int | None = 100) -> Iterator[str]:
        """Repository names, following ``Link: <...>; rel="next"`` pages."""
        yield from self._paginate("/v2/_catalog", "repositories", [CATALOG_SCOPE], None, page_size,
                                  "catalog")

    def tags(self, repository: str, page_size: int | None = None) -> Iterator[str]:
        yield from self._paginate(f"/v2/{repository}/tags/list", "tags", [repo_scope(repository)],
                                  repository, page_size, "tag list")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _host_of(url: str) -> str:
    return urlsplit(url).netloc or url


def _reason(exc: Exception) -> str:
    """A short reason for a transport error, without URLs (which could carry a query with secrets)."""
    name = type(exc).__name__
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error (is it a plain-http registry? mark it insecure)"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection was closed before the end"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return name


def _describe_scopes(scopes: list[str]) -> str:
    return ", ".join(scopes) if scopes else "this registry"


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _next_link(header: str) -> str | None:
    for part in header.split(","):
        if 'rel="next"' in part or "rel=next" in part:
            start, end = part.find("<"), part.find(">")
            if start != -1 and end > start:
                return part[start + 1 : end]
    return None


class _counting:
    """A file-like body that reads at most ``limit`` bytes and reports progress."""

    def __init__(self, source: BinaryIO, limit: int, progress: Callable[[int], None] | None, offset: int):
        self.source, self.left, self.progress, self.done = source, limit, progress, offset

    def __len__(self) -> int:
        return self.left

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.source.read(min(n, READ_CHUNK))
        self.left -= len(data)
        self.done += len(data)
        if self.progress and data:
            self.progress(self.done)
        return data
