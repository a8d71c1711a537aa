"""A Bearer token server and a registry front, for the token flow and for hostile registries.

distribution 2.8 ships no token server, so ``RegistryFront`` stands in front of a
real ``docker-registry`` (see ``tests.support.registry``) and proxies to it. With
a ``TokenAuth`` it behaves like Docker Hub (or Alibaba ACR, with their realm and
service values): ``/v2/`` answers 401 with ``Bearer realm=..,service=..``, each
request needs a token whose access covers ``repository:<name>:<action>``, and the
token endpoint checks ``service``, the requested scopes, Basic credentials and
``account``. It counts its token requests so that tests can check caching.

The front can also lie: ``tamper[digest] = bytes`` serves other bytes for a blob
or manifest, and ``cut[digest] = n`` drops the connection after ``n`` bytes
(every time, or ``cut_times[digest]`` times); ``stall[digest] = n`` sends ``n``
bytes and waits for ``release``, so that a test can kill the client mid-download.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "authorization", "content-length"}


@dataclass
class TokenAuth:
    service: str = "registry.docker.io"
    realm_path: str = "/token"
    users: dict[str, str] = field(default_factory=dict)
    public: set[str] = field(default_factory=set)  # repositories anyone may pull
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # identity token -> user
    expires_in: int = 300
    # filled in while serving
    token_requests: list[dict] = field(default_factory=list)
    tokens: dict[str, tuple[str | None, set[tuple[str, str, str]], float]] = field(default_factory=dict)

    def allowed(self, user: str | None, kind: str, name: str, action: str) -> bool:
        if kind == "registry":
            return user is not None and name == "catalog"
        if user is not None:
            return True  # an account may pull, push and delete anywhere in this small world
        return action == "pull" and name in self.public


@dataclass
class FrontLog:
    method: str
    path: str
    status: int
    authorization: str = ""  # the scheme of the Authorization header received, if any


class RegistryFront:
    def __init__(self, backend: str, auth: TokenAuth | None = None):
        self.backend = backend  # "127.0.0.1:PORT" of a docker-registry
        self.auth = auth
        self.tamper: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.cut_times: dict[str, int] = {}  # if set for a digest, cut only this many times
        self.stall: dict[str, int] = {}  # digest -> bytes sent before waiting for ``release``
        self.release = threading.Event()
        # path fragment -> (status, error code): answer with a registry error, as the Hub does
        self.fail: dict[str, tuple[int, str]] = {}
        self.redirect_blobs_to: str | None = None  # "host:port" of another front acting as storage
        # distribution 2.8 ignores ?n= on tags/list; newer registries (and the Hub) page it.
        self.paginate_tags = False
        self.relative_locations = False  # answer uploads with "/v2/..." Locations, as some registries do
        self.log: list[FrontLog] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        # The token service listens apart, as auth.docker.io is apart from registry-1.docker.io.
        self.token_server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.token_server.daemon_threads = True
        self.servers = [self.server, self.token_server]

    @property
    def realm(self) -> str:
        port = self.token_server.server_address[1]
        return f"http://127.0.0.1:{port}{self.auth.realm_path}" if self.auth else ""

    def token_request_count(self) -> int:
        return len(self.auth.token_requests) if self.auth else 0

    def requests(self, method: str, contains: str = "") -> list[FrontLog]:
        return [e for e in self.log if e.method == method and contains in e.path]


@contextlib.contextmanager
def run_front(backend: str, auth: TokenAuth | None = None) -> Iterator[RegistryFront]:
    front = RegistryFront(backend, auth)
    # shutdown() waits for the serving loop's next look at its flag: every 0.05 s, not 0.5
    threads = [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
               for server in front.servers]
    for thread in threads:
        thread.start()
    try:
        yield front
    finally:
        for server, thread in zip(front.servers, threads, strict=True):
            server.shutdown()
            server.server_close()
            thread.join(5)


def _parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name or not actions:
        return None
    return kind, name, [a for a in actions.split(",") if a]


def _page_tags(path: str, data: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """Cut a full tag list into the page ``?n=&last=`` asks for, with a ``Link`` to the next one."""
    parts = urlsplit(path)
    query = parse_qs(parts.query)
    if "n" not in query:
        return data, headers
    body = json.loads(data)
    n, last = int(query["n"][0]), query.get("last", [""])[0]
    tags = sorted(body.get("tags") or [])
    rest = [t for t in tags if t > last] if last else tags
    body["tags"] = rest[:n]
    headers = dict(headers)
    if len(rest) > n:
        headers["Link"] = f'<{parts.path}?n={n}&last={rest[n - 1]}>; rel="next"'
    return json.dumps(body).encode(), headers


def _handler(front: RegistryFront):  # noqa: C901 (one fake registry front: a branch per endpoint)
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self._log(status)  # before answering, so a test that got the answer sees the entry
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _log(self, status: int) -> None:
            scheme = self.headers.get("Authorization", "").partition(" ")[0]
            front.log.append(FrontLog(self.command, self.path, status, scheme))

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return bytes(out)
                    out += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        # -- token endpoint -----------------------------------------------

        def _token(self) -> None:
            auth = front.auth
            if self.command == "POST":  # the OAuth2 form: a refresh token instead of a password
                query = parse_qs(self._body().decode())
            else:
                query = parse_qs(urlsplit(self.path).query)
            record = {"service": query.get("service", [""])[0], "scope": query.get("scope", []),
                      "account": query.get("account", [None])[0], "user": None}
            auth.token_requests.append(record)
            if record["service"] != auth.service:
                return self._json(400, {"details": "invalid service"})
            user = None
            header = self.headers.get("Authorization", "")
            if self.command == "POST":
                record["grant"] = query.get("grant_type", [""])[0]
                user = auth.refresh_tokens.get(query.get("refresh_token", [""])[0])
                if record["grant"] != "refresh_token" or user is None:
                    return self._json(401, {"details": "invalid refresh token"})
                record["user"] = user
            elif header.startswith("Basic "):
                name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                if auth.users.get(name) != password:
                    return self._json(401, {"details": "incorrect username or password"})
                if record["account"] not in (None, name):
                    return self._json(400, {"details": "account does not match the credentials"})
                user = record["user"] = name
            granted: set[tuple[str, str, str]] = set()
            for scope in record["scope"]:
                parsed = _parse_scope(scope)
                if parsed is None:
                    return self._json(400, {"details": f"invalid scope {scope}"})
                kind, name, actions = parsed
                granted |= {(kind, name, a) for a in actions if auth.allowed(user, kind, name, a)}
            token = secrets.token_hex(16)
            auth.tokens[token] = (user, granted, time.monotonic() + auth.expires_in)
            self._json(200, {"token": token, "access_token": token, "expires_in": auth.expires_in,
                             "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

        def _json(self, status: int, data: dict, headers: dict[str, str] | None = None) -> None:
            self._reply(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})

        # -- registry front -------------------------------------------------

        def _required(self) -> list[tuple[str, str, str]]:
            path = urlsplit(self.path).path
            query = parse_qs(urlsplit(self.path).query)
            if path.rstrip("/") == "/v2":
                return []
            if path == "/v2/_catalog":
                return [("registry", "catalog", "*")]
            rest = path[len("/v2/"):]
            for marker in ("/manifests/", "/blobs/", "/tags/"):
                if marker in rest:
                    name = rest.split(marker)[0]
                    break
            else:
                return [("repository", rest, "pull")]
            action = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}.get(self.command, "push")
            needs = [("repository", name, action)]
            if action == "push":
                needs.append(("repository", name, "pull"))
            if "mount" in query and "from" in query:
                needs.append(("repository", query["from"][0], "pull"))
            return needs

        def _authorize(self) -> bool:
            auth = front.auth
            if auth is None:
                return True
            needs = self._required()
            header = self.headers.get("Authorization", "")
            entry = auth.tokens.get(header[7:]) if header.startswith("Bearer ") else None
            if entry and entry[2] > time.monotonic() and all(n in entry[1] for n in needs):
                return True
            challenge = f'Bearer realm="{front.realm}",service="{auth.service}"'
            if needs:
                # Like the Hub: one scope per resource, actions joined by commas.
                by_name: dict[tuple[str, str], list[str]] = {}
                for kind, name, action in needs:
                    by_name.setdefault((kind, name), []).append(action)
                scope = " ".join(f"{k}:{n}:{','.join(sorted(set(a)))}" for (k, n), a in by_name.items())
                challenge += f',scope="{scope}"'
                if entry:
                    challenge += ',error="insufficient_scope"'
            self._json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required",
                                         "detail": None}]}, {"WWW-Authenticate": challenge})
            return False

        def _proxy(self) -> None:
            if self.server is front.token_server:
                if front.auth and urlsplit(self.path).path == front.auth.realm_path:
                    return self._token()
                return self._json(404, {"details": "not found"})
            if not self._authorize():
                return
            for fragment, (status, code) in front.fail.items():
                if fragment in self.path:
                    message = {"DENIED": "requested access to the resource is denied",
                               "TOOMANYREQUESTS": "You have reached your pull rate limit."}.get(code, code.lower())
                    return self._json(status, {"errors": [{"code": code, "message": message}]})
            if front.redirect_blobs_to and self.command == "GET" and "/blobs/sha256:" in self.path:
                # Like a registry that sends blob downloads to object storage.
                return self._reply(307, b"", {"Location": f"http://{front.redirect_blobs_to}{self.path}"})
            body = self._body() if self.command in ("POST", "PUT", "PATCH") else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            # The registry builds absolute Locations from Host: make them point at the front.
            headers["Host"] = front.host
            if body is not None:
                headers["Content-Length"] = str(len(body))
            conn = http.client.HTTPConnection(front.backend, timeout=60)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                digest = urlsplit(self.path).path.rsplit("/", 1)[-1]
                data = response.read() if self.command != "HEAD" else b""
                if self.command == "GET" and digest in front.tamper and response.status == 200:
                    data = front.tamper[digest]
                out = {k: v for k, v in response.getheaders() if k.lower() not in HOP_HEADERS}
                if front.relative_locations and "Location" in out:
                    parts = urlsplit(out["Location"])
                    out["Location"] = parts.path + (f"?{parts.query}" if parts.query else "")
                if self.command == "GET" and digest in front.stall and response.status == 200:
                    return self._stall(response.status, out, data, front.stall[digest])
                if self.command == "GET" and digest in front.cut and response.status == 200:
                    left = front.cut_times.get(digest)
                    if left is None or left > 0:
                        if left is not None:
                            front.cut_times[digest] = left - 1
                        return self._cut(response.status, out, data, front.cut[digest])
                if self.command == "HEAD":
                    self._log(response.status)
                    self.send_response(response.status)
                    for key, value in response.getheaders():
                        if key.lower() not in ("connection", "keep-alive", "transfer-encoding"):
                            self.send_header(key, value)
                    self.end_headers()
                    return
                if front.paginate_tags and "/tags/list" in self.path and response.status == 200:
                    data, out = _page_tags(self.path, data, out)
                self._reply(response.status, data, out)
            finally:
                conn.close()

        def _cut(self, status: int, headers: dict[str, str], data: bytes, n: int) -> None:
            self._log(-1)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:n])
            self.wfile.flush()
            self.close_connection = True

        def _stall(self, status: int, headers: dict[str, str], data: bytes, n: int) -> None:
            self._log(-2)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data[:n])
                self.wfile.flush()
                front.release.wait(30)
                self.wfile.write(data[n:])
            except OSError:
                self.close_connection = True  # the client went away, as the test intended

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _proxy

    return Handler
