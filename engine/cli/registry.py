"""Registry commands: ``pull``, ``push``, ``login``, ``logout``, ``catalog``, ``tags``, ``manifest rm``.

Credentials come from Docker's ``config.json`` (``$DOCKER_CONFIG`` or
``~/.docker/config.json``), which ``login`` writes, as with ``docker``.
"""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING

from engine.engine import Engine
from engine.errors import InvalidArgument
from engine.images.reference import parse, parse_repository

if TYPE_CHECKING:
    from engine.distribution.credentials import Credentials


# The registry client needs `requests`, slow to import: load it only for the commands
# that talk to a registry, so `ps`, `logs` or `run` start fast.
def _cred():
    from engine.distribution import credentials

    return credentials


def _dist():
    from engine.distribution import transfer as distribution

    return distribution


# The top-level commands register() adds: the CLI builds only the parser a command needs.
COMMANDS = (
    "catalog", "login", "logout", "manifest", "pull", "push", "repositories", "tags",
)


def register(subparsers) -> None:
    pull = subparsers.add_parser("pull", help="pull an image from a registry")
    pull.add_argument("--platform", help="os/arch[/variant] to pick from a multi-platform image")
    _insecure(pull)
    pull.add_argument("reference")
    pull.set_defaults(handler=cmd_pull)

    push = subparsers.add_parser("push", help="push an image to a registry")
    _insecure(push)
    push.add_argument("reference")
    push.set_defaults(handler=cmd_push)

    login = subparsers.add_parser("login", help="log in to a registry (credentials are checked, then saved)")
    login.add_argument("-u", "--username")
    login.add_argument("-p", "--password", help="insecure: prefer --password-stdin")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    _insecure(login)
    login.add_argument("host", nargs="?", default="docker.io")
    login.set_defaults(handler=cmd_login)

    logout = subparsers.add_parser("logout", help="remove saved credentials for a registry")
    logout.add_argument("host", nargs="?", default="docker.io")
    logout.set_defaults(handler=cmd_logout)

    for name in ("catalog", "repositories"):
        catalog = subparsers.add_parser(name, help="list the repositories of a registry")
        catalog.add_argument("--page-size", type=int, default=100)
        _insecure(catalog)
        catalog.add_argument("host")
        catalog.set_defaults(handler=cmd_catalog)

    tags = subparsers.add_parser("tags", help="list the tags of a repository")
    _insecure(tags)
    tags.add_argument("repository")
    tags.set_defaults(handler=cmd_tags)

    manifest = subparsers.add_parser("manifest", help="manage manifests in a registry")
    actions = manifest.add_subparsers(dest="manifest_command", metavar="ACTION", required=True)
    rm = actions.add_parser("rm", help="delete a manifest from a registry (by tag or digest)")
    _insecure(rm)
    rm.add_argument("reference")
    rm.set_defaults(handler=cmd_manifest_rm)


def _insecure(parser) -> None:
    parser.add_argument("--insecure", action="store_true", default=None,
                        help="use plain http (loopback registries always do)")


class ProgressPrinter:
    """Docker-like per-layer lines: redrawn in place on a terminal, one line per status change otherwise."""

    NAMES = {"Download complete": "Pull complete", "Verifying": "Verifying Checksum"}

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.order: list[str] = []
        self.last: dict[str, str] = {}

    def __call__(self, event: dict) -> None:
        layer, status = event["id"], self.NAMES.get(event["status"], event["status"])
        text = f"{layer}: {status}"
        if not self.tty:
            if self.last.get(layer) != status:  # one line per change, no bars
                self.last[layer] = status
                print(text, file=self.stream, flush=True)
            return
        if status in ("Downloading", "Pushing"):
            text += " " + _bar(event["current"], event["total"])
        if layer not in self.order:
            self.order.append(layer)
            print(text, file=self.stream, flush=True)
            return
        up = len(self.order) - self.order.index(layer)
        self.stream.write(f"\x1b[{up}A\r\x1b[2K{text}\x1b[{up}B\r")
        self.stream.flush()


def _bar(current: int, total: int, width: int = 40) -> str:
    if total <= 0:
        return _size(current)
    done = min(width, width * current // total)
    arrow = ">" if done < width else ""
    return f"[{'=' * done}{arrow}{' ' * (width - done - len(arrow))}] {_size(current)}/{_size(total)}"


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{n}B"
        n /= 1000
    return f"{n}B"


def _creds(host: str) -> Credentials | None:
    return _cred().lookup(host)


def cmd_pull(args, config) -> int:
    ref = parse(args.reference)
    store = Engine(config).images
    before = store.get(str(ref)).manifest_digest if store.exists(str(ref)) else None
    print(f"{ref.tag or ref.digest}: Pulling from {ref.familiar_name}", flush=True)
    image = _dist().pull(store, ref, credentials=_creds(ref.registry), platform=args.platform,
                      progress=ProgressPrinter(), insecure=args.insecure)
    print(f"Digest: {image.index_digest or image.manifest_digest}")
    if before == image.manifest_digest:
        print(f"Status: Image is up to date for {ref.familiar}")
    else:
        print(f"Status: Downloaded newer image for {ref.familiar}")
    print(str(ref))
    return 0


def cmd_push(args, config) -> int:
    ref = parse(args.reference)
    store = Engine(config).images
    image = store.get(args.reference)
    print(f"The push refers to repository [{ref.name}]", flush=True)
    digest = _dist().push(store, args.reference, credentials=_creds(ref.registry), progress=ProgressPrinter(),
                       insecure=args.insecure)
    size = store.content.size(image.manifest_digest)
    print(f"{ref.tag}: digest: {digest} size: {size}")
    return 0


def cmd_login(args, config) -> int:
    username = args.username
    if not username:
        if not sys.stdin.isatty():
            raise InvalidArgument("give a username with -u when stdin is not a terminal")
        username = input("Username: ").strip()
    if args.password_stdin:
        if args.password:
            raise InvalidArgument("--password and --password-stdin are mutually exclusive")
        password = sys.stdin.read().rstrip("\r\n")
    elif args.password is not None:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", file=sys.stderr)
        password = args.password
    else:
        password = getpass.getpass("Password: ")
    if not password:
        raise InvalidArgument("a password is required")
    path = _cred().login(args.host, _cred().Credentials(username, password), insecure=args.insecure)
    print(f"Credentials saved in {path}")
    print("Login Succeeded")
    return 0


def cmd_logout(args, config) -> int:
    host = _cred().normalize_host(args.host)
    if _cred().remove(host):
        print(f"Removing login credentials for {host}")
    else:
        print(f"Not logged in to {host}")
    return 0


def cmd_catalog(args, config) -> int:
    host = _cred().normalize_host(args.host)
    for name in _dist().catalog(host, credentials=_creds(host), insecure=args.insecure, page_size=args.page_size):
        print(name)
    return 0


def cmd_tags(args, config) -> int:
    ref = parse_repository(args.repository)
    for tag in _dist().list_tags(ref, credentials=_creds(ref.registry), insecure=args.insecure, page_size=100):
        print(tag)
    return 0


def cmd_manifest_rm(args, config) -> int:
    ref = parse(args.reference)
    digest = _dist().delete_manifest(ref, credentials=_creds(ref.registry), insecure=args.insecure)
    print(f"Deleted: {ref.name}@{digest}")
    return 0
