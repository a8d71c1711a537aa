"""Container commands: run, create, start, stop, restart, kill, pause, unpause, rm, rename,
ps, logs, exec, inspect, top, stats, wait, events."""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time

from engine.cli import _options as options
from engine.errors import EngineError, InvalidArgument
from engine.supervisor.monitor import F_EXIT, F_STDERR, F_STDOUT


def _containers(config):
    from engine.engine import Engine

    return Engine(config).containers


def _add_create_options(p) -> None:
    p.add_argument("--name")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("--entrypoint")
    p.add_argument("-m", "--memory")
    p.add_argument("--cpus")
    p.add_argument("--pids-limit", type=int)
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--security-opt", action="append", default=[], metavar="OPT",
                   help="seccomp=unconfined: no system call filter (default: Docker's refusals)")
    p.add_argument("--restart")
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("-h", "--hostname")
    p.add_argument("--network", help="none, host, private (default), bridge or a network's name")
    p.add_argument("-p", "--publish", action="append", default=[])
    p.add_argument("-v", "--volume", action="append", default=[])
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("image")
    p.add_argument("command", nargs="...")


# The top-level commands register() adds: the CLI builds only the parser a command needs.
COMMANDS = (
    "create", "events", "exec", "inspect", "kill", "logs", "pause", "ps", "rename", "restart",
    "rm", "run", "start", "stats", "stop", "top", "unpause", "wait",
)


def register(subparsers) -> None:
    def add(name, handler, help_text, **kw):
        p = subparsers.add_parser(name, help=help_text, **kw)
        p.set_defaults(handler=handler)
        return p

    p = add("run", cmd_run, "create and start a container", add_help=False)
    p.add_argument("--help", action="help")
    _add_create_options(p)
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--rm", action="store_true")
    p = add("create", cmd_create, "create a container", add_help=False)
    p.add_argument("--help", action="help")
    _add_create_options(p)
    p = add("start", cmd_start, "start containers")
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("containers", nargs="+")
    for verb, handler in (("stop", cmd_stop), ("restart", cmd_restart)):
        p = add(verb, handler, f"{verb} containers")
        p.add_argument("-t", "--time", type=int)
        p.add_argument("containers", nargs="+")
    p = add("kill", cmd_kill, "send a signal to containers")
    p.add_argument("-s", "--signal", default="KILL")
    p.add_argument("containers", nargs="+")
    for verb, handler in (("pause", cmd_pause), ("unpause", cmd_unpause), ("wait", cmd_wait),
                          ("inspect", cmd_inspect)):
        p = add(verb, handler, f"{verb} containers")
        p.add_argument("containers", nargs="+")
    p = add("rm", cmd_rm, "remove containers")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("containers", nargs="+")
    p = add("rename", cmd_rename, "rename a container")
    p.add_argument("container")
    p.add_argument("new_name")
    p = add("ps", cmd_ps, "list containers")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format", choices=["table", "json"], default="table")
    p = add("logs", cmd_logs, "show a container's log")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("container")
    p = add("exec", cmd_exec, "run a command in a running container")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("container")
    p.add_argument("command", nargs="...")
    p = add("top", cmd_top, "show a container's processes")
    p.add_argument("container")
    p = add("stats", cmd_stats, "show resource usage")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("containers", nargs="*")
    p = add("events", cmd_events, "show engine events")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("-f", "--filter", action="append", default=[])


# ---------------------------------------------------------------- helpers

def _create_kwargs(args) -> dict:
    return dict(
        name=args.name, env=args.env, workdir=args.workdir, user=args.user,
        entrypoint=args.entrypoint, memory=args.memory, cpus=args.cpus, pids_limit=args.pids_limit,
        read_only=args.read_only, restart=args.restart, labels=options.pairs(args.label),
        hostname=args.hostname, network=args.network, tty=args.tty, open_stdin=args.interactive,
        publish=args.publish or None, volumes=args.volume or None, security_opt=args.security_opt or None,
    )


class _RawTerminal:
    """Local terminal in raw mode (restored on exit), with window size forwarding."""

    def __init__(self, conn, enabled: bool):
        self.conn, self.enabled, self.saved = conn, enabled, None

    def __enter__(self):
        if self.enabled:
            import termios
            import tty

            self.saved = termios.tcgetattr(0)
            tty.setraw(0)
            self.resize()
            signal.signal(signal.SIGWINCH, lambda *_: self.resize())
        return self

    def resize(self) -> None:
        size = os.get_terminal_size(0)
        try:
            self.conn.resize(size.lines, size.columns)
        except OSError:
            pass

    def __exit__(self, *exc):
        if self.saved is not None:
            import termios

            signal.signal(signal.SIGWINCH, signal.SIG_DFL)
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)


def _pump(conn, *, stdin: bool, tty: bool) -> tuple[int | None, bool]:
    """Copy between the attach connection and our stdio until the session ends.
    Returns (exit code or None, whether any output came)."""
    got_output = False
    stdin_open = stdin
    with _RawTerminal(conn, tty and stdin and os.isatty(0)):
        while True:
            fds = [conn.fileno()] + ([0] if stdin_open else [])
            ready, _, _ = select.select(fds, [], [])
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    conn.write(data)
                else:
                    stdin_open = False
                    if not tty:
                        conn.close_stdin()
            if conn.fileno() in ready:
                kind, payload = conn.read()
                if kind is None:
                    return None, got_output
                if kind == F_STDOUT:
                    got_output = True
                    os.write(1, payload)
                elif kind == F_STDERR:
                    got_output = True
                    os.write(2, payload)
                elif kind == F_EXIT:
                    result = json.loads(payload or b"{}")
                    if "error" in result:
                        print(f"Error: {result['error']}", file=sys.stderr)
                        return 126, got_output
                    return int(result.get("ExitCode", 0)), got_output


def _print_logs(records) -> None:
    for record in records:
        data = record.get("log", "").encode()
        os.write(2 if record.get("stream") == "stderr" else 1, data)


# ---------------------------------------------------------------- commands

def cmd_create(args, config) -> int:
    container = _containers(config).create(args.image, args.command or None, **_create_kwargs(args))
    print(container.id)
    return 0


def cmd_run(args, config) -> int:
    store = _containers(config)
    foreground = not args.detach
    container = store.create(args.image, args.command or None, auto_remove=args.rm, **_create_kwargs(args))
    try:
        container = store.start(container.id, waiter=args.rm and foreground)
    except EngineError:
        if args.rm:
            store.remove(container.id, force=True)
        raise
    if not foreground:
        print(container.id)
        return 0
    code = None
    got_output = False
    try:
        conn = store.attach(container.id, stdin=args.interactive, replay=True)
    except EngineError:
        conn = None  # already gone: its output is in the log
    if conn is not None:
        try:
            code, got_output = _pump(conn, stdin=args.interactive, tty=args.tty)
        finally:
            conn.close()
    if code is None:
        if not got_output:
            _print_logs(store.logs(container.id))
        code = store.wait(container.id)
    if args.rm:
        store.remove(container.id, force=True)
    return code


def cmd_start(args, config) -> int:
    store = _containers(config)
    if args.attach and len(args.containers) == 1:
        container = store.start(args.containers[0])
        conn = store.attach(container.id, replay=True)
        code, _ = _pump(conn, stdin=False, tty=False)
        return store.wait(container.id) if code is None else code
    return options.each(args.containers, lambda ref: store.start(ref) and ref)


def cmd_stop(args, config) -> int:
    store = _containers(config)
    return options.each(args.containers, lambda ref: store.stop(ref, args.time) and ref)


def cmd_restart(args, config) -> int:
    store = _containers(config)
    return options.each(args.containers, lambda ref: store.restart(ref, args.time) and ref)


def cmd_kill(args, config) -> int:
    from engine.containers.inputs import parse_signal

    parse_signal(args.signal)  # a bad signal is an error before anything is touched
    store = _containers(config)
    return options.each(args.containers, lambda ref: store.kill(ref, args.signal) and ref)


def cmd_pause(args, config) -> int:
    store = _containers(config)
    return options.each(args.containers, lambda ref: store.pause(ref) and ref)


def cmd_unpause(args, config) -> int:
    store = _containers(config)
    return options.each(args.containers, lambda ref: store.unpause(ref) and ref)


def cmd_wait(args, config) -> int:
    store = _containers(config)
    return options.each(args.containers, lambda ref: store.wait(ref))


def cmd_rm(args, config) -> int:
    from engine.base.space import ensure_reserve

    store = _containers(config)
    try:
        return options.each(args.containers, lambda ref: store.remove(ref, force=args.force) or ref)
    finally:
        ensure_reserve(str(config.root))  # the space a full disk took from it may be back


def cmd_rename(args, config) -> int:
    _containers(config).rename(args.container, args.new_name)
    return 0


def cmd_inspect(args, config) -> int:
    store = _containers(config)
    out, code = [], 0
    for ref in args.containers:
        try:
            out.append(store.inspect(ref))
        except EngineError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            code = 1
    print(json.dumps(out, indent=4))
    return code


def cmd_ps(args, config) -> int:
    rows = _containers(config).list(all=args.all, filters=options.filters(args.filter))
    if args.quiet:
        for row in rows:
            print(row["Id"][:12])
        return 0
    if args.format == "json":
        for row in rows:
            print(json.dumps(row))
        return 0
    width = max([28] + [len(row["Status"]) + 2 for row in rows])  # "(unsupervised)" is never cut
    print(f"{'CONTAINER ID':<14}{'IMAGE':<22}{'COMMAND':<24}{'CREATED':<18}{'STATUS':<{width}}NAMES")
    now = time.time()
    for row in rows:
        command = row["Command"] if len(row["Command"]) <= 20 else row["Command"][:17] + "..."
        created = _ago(now - row["Created"])
        print(f"{row['Id'][:12]:<14}{row['Image'][:20]:<22}{chr(34) + command + chr(34):<24}{created:<18}"
              f"{row['Status']:<{width}}{row['Names'][0].lstrip('/')}")
    return 0


def _ago(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} seconds ago"


def cmd_logs(args, config) -> int:
    from engine.logs.reader import format_record

    tail = None if args.tail == "all" else int(args.tail)
    store = _containers(config)
    records = store.logs(args.container, follow=args.follow, tail=tail, since=args.since, until=args.until)
    try:
        for record in records:
            os.write(2 if record.get("stream") == "stderr" else 1, format_record(record, args.timestamps))
    except BrokenPipeError:
        pass
    return 0


def cmd_exec(args, config) -> int:
    from engine.containers import exec as ex

    store = _containers(config)
    if not args.command:
        raise InvalidArgument("exec needs a command")
    try:
        return _exec(ex, store, args)
    except ex.ExecRefused as exc:  # Docker's words and exit code (127: not found)
        print(str(exc), file=sys.stderr)
        return exc.exit_code


def _exec(ex, store, args) -> int:
    if args.tty and not args.detach:
        exec_id, conn = ex.exec_tty(store, args.container, args.command, user=args.user,
                                    workdir=args.workdir, env=args.env)
        try:
            code, _ = _pump(conn, stdin=args.interactive, tty=True)
        finally:
            conn.close()
        if code is None:
            code = ex.exec_inspect(store, args.container, exec_id).get("ExitCode") or 0
        return code
    proc = ex.exec_start(store, args.container, args.command, user=args.user, workdir=args.workdir,
                         env=args.env, stdin=args.interactive, detach=args.detach)
    if args.detach:
        _, err = proc.communicate()
        if proc.returncode:
            refused = ex.runtime_exec_error(err)
            if refused:
                raise ex.ExecRefused(*refused)
            raise EngineError(f"exec failed: {err.decode(errors='replace').strip()}")
        return 0
    # Stream both pipes to ours as they come, stdin from ours. runc's own refusal comes on
    # stderr before the command runs: what looks like it is held back to be said Docker's way.
    streams = {proc.stdout.fileno(): 1, proc.stderr.fileno(): 2}
    held = b""
    stdin_open = args.interactive
    while streams:
        ready, _, _ = select.select(list(streams) + ([0] if stdin_open else []), [], [])
        for fd in ready:
            if fd == 0:
                data = os.read(0, 65536)
                if data:
                    proc.stdin.write(data)
                    proc.stdin.flush()
                else:
                    proc.stdin.close()
                    stdin_open = False
                continue
            data = os.read(fd, 65536)
            if not data:
                del streams[fd]
            elif streams[fd] == 2 and (held or data.startswith(b"time=")):
                held += data
            else:
                os.write(streams[fd], data)
    code = proc.wait()
    refused = ex.runtime_exec_error(held) if held and code == 255 else None
    if refused:
        raise ex.ExecRefused(*refused)
    if held:
        os.write(2, held)
    ex.record_exit(store, args.container, proc.exec_id, code)
    return code


def cmd_top(args, config) -> int:
    result = _containers(config).top(args.container)
    widths = [max(len(t), *(len(p[i]) for p in result["Processes"])) if result["Processes"] else len(t)
              for i, t in enumerate(result["Titles"])]
    print("  ".join(t.ljust(w) for t, w in zip(result["Titles"], widths, strict=True)))
    for process in result["Processes"]:
        print("  ".join(v.ljust(w) for v, w in zip(process, widths, strict=True)))
    return 0


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.4g}{unit}"
        n /= 1024
    return f"{n}"


def cmd_stats(args, config) -> int:
    import threading

    from engine.containers import stats

    store = _containers(config)
    refs = args.containers or [c["Id"] for c in store.list()]
    latest: dict[str, dict] = {}

    def collect(ref):
        try:
            for summary in stats.stream(store, ref, count=1 if args.no_stream else None):
                latest[ref] = summary
        except EngineError as exc:
            print(f"Error: {exc}", file=sys.stderr)

    threads = [threading.Thread(target=collect, args=(ref,), daemon=True) for ref in refs]
    for thread in threads:
        thread.start()
    while True:
        time.sleep(1.0 if not args.no_stream else 0)
        if args.no_stream:
            for thread in threads:
                thread.join()
        rows = [latest[r] for r in refs if r in latest]
        if args.format == "json":
            for row in rows:
                print(json.dumps(row), flush=True)
        else:
            if not args.no_stream:
                print("\033[2J\033[H", end="")
            print(f"{'CONTAINER ID':<14}{'NAME':<20}{'CPU %':<9}{'MEM USAGE / LIMIT':<24}{'MEM %':<8}"
                  f"{'NET I/O':<20}{'BLOCK I/O':<20}PIDS")
            for s in rows:
                print(f"{s['id'][:12]:<14}{s['name'][:18]:<20}{s['cpu_percent']:.2f}%".ljust(43)
                      + f"{_human(s['memory_usage'])} / {_human(s['memory_limit'])}".ljust(24)
                      + f"{s['memory_percent']:.2f}%".ljust(8)
                      + f"{_human(s['net_rx'])} / {_human(s['net_tx'])}".ljust(20)
                      + f"{_human(s['block_read'])} / {_human(s['block_write'])}".ljust(20)
                      + str(s["pids"]), flush=True)
        if args.no_stream or not any(t.is_alive() for t in threads):
            return 0


def cmd_events(args, config) -> int:
    from engine import events
    from engine.logs.reader import parse_when

    def seconds(value):
        stamp = parse_when(value)
        if stamp is None:
            return None
        from engine.containers.inputs import parse_time

        return parse_time(stamp)

    since, until = seconds(args.since), seconds(args.until)
    filters = options.filters(args.filter)
    try:
        if until is not None:
            for record in events.read(config, since=since or 0, until=until, filters=filters):
                print(json.dumps(record), flush=True)
        else:
            for record in events.follow(config, since=since, filters=filters):
                print(json.dumps(record), flush=True)
    except BrokenPipeError:
        sys.stdout = None  # nobody reads any more; do not complain at exit
    return 0
