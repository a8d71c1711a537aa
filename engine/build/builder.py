"""Images from a Dockerfile, as Docker's classic builder makes them.

Every step gives an image (untagged, like the classic builder's intermediate images):
config steps a new config over the same layers, RUN the diff of a container run through
``engine.containers.manager`` (``Snapshotter.write_diff``), COPY/ADD a layer tar made from the
context (or, with ``--from``, from another stage or image). The cache
(``root/build/cache.json``) maps (parent image, the step as written after expansion,
the digest of what COPY/ADD would add, the build args a RUN sees) to the image that step
made; a step whose key is there and whose image still exists is skipped.

Output goes line by line to a callback (``on_line``), so the console can show it live.
Errors name the Dockerfile line. A failed build leaves the steps that succeeded (they are
cache) and nothing else: its RUN container and mounts are removed.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import json
import os
import re
import secrets
import stat
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from engine.base.files import lock, write_json_atomic
from engine.base.inroot import BENEATH, NO_SYMLINKS, Root, lexical_parts, walk
from engine.base.tarsafe import extract_all
from engine.build import dockerfile as df
from engine.build.commit import ENGINE_FILES, add_at, filter_layer, make_image, store_layer, tarinfo_at
from engine.config import EngineConfig
from engine.errors import EngineError, InvalidArgument, NotFound
from engine.images.reference import parse

DEFAULT_SHELL = ["/bin/sh", "-c"]
BUILD_LABEL = "io.berth.build"  # on the short-lived containers of RUN steps (lists may hide them)
LineFn = Callable[[str], None]


class BuildError(InvalidArgument):
    pass


# ---------------------------------------------------------------- .dockerignore

def _pattern_regex(pattern: str) -> re.Pattern:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern[i:i + 2] == "**":
                i += 2
                if pattern[i:i + 1] == "/":
                    i += 1
                    out.append("(?:.*/)?")
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i)
            if end == -1:
                out.append(re.escape(c))
            else:
                out.append(pattern[i:end + 1])
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


class Ignore:
    """``.dockerignore``: patterns (``*``, ``?``, ``**``), ``!`` exceptions; the last match
    wins, and a pattern matching a directory covers what is below it."""

    def __init__(self, text: str = ""):
        self.rules: list[tuple[re.Pattern, bool]] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = os.path.normpath(line[1:].strip() if negate else line).lstrip("/")
            if pattern in (".", ""):
                continue
            self.rules.append((_pattern_regex(pattern), negate))

    def ignored(self, rel: str) -> bool:
        if not self.rules:
            return False
        parts = rel.split("/")
        result = False
        for regex, negate in self.rules:
            if any(regex.match("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
                result = not negate
        return result


# ---------------------------------------------------------------- the state of a stage

@dataclass
class Stage:
    name: str | None
    index: int
    image: object | None  # the current image (None: scratch with nothing added yet)
    config: dict = field(default_factory=dict)  # the container config being built
    args: dict[str, str] = field(default_factory=dict)  # ARG values in scope
    shell: list[str] = field(default_factory=lambda: list(DEFAULT_SHELL))

    def env(self) -> dict[str, str]:
        """What ${VAR} sees: the ARGs, then ENV over them."""
        out = dict(self.args)
        for item in self.config.get("Env") or []:
            k, _, v = item.partition("=")
            out[k] = v
        return out


def _duration(ins: df.Instruction, text: str) -> int:
    total, rest = 0.0, text
    units = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", text):
        total += float(number) * units[unit]
        rest = rest.replace(number + unit, "", 1)
    if rest or not text:
        raise ins.error(f"invalid duration {text!r} (e.g. 30s, 1m30s)")
    return int(total * 1e9)


class Builder:
    def __init__(self, config: EngineConfig, containers=None, *, on_line: LineFn | None = None,
                 network: str = "bridge", no_cache: bool = False, pull: Callable | None = None,
                 cancelled: Callable[[], bool] | None = None):
        """``pull(ref) -> Image`` fetches a FROM image that is not local (default: an anonymous
        ``distribution.pull``; pass one with credentials); ``cancelled()`` is asked between
        steps and while a RUN runs: True stops the build (BuildError "cancelled")."""
        if containers is None:
            from engine.containers.manager import Containers

            containers = Containers(config)
        self.config = config
        self.containers = containers
        self.images = containers.images
        self.on_line = on_line or (lambda line: None)
        self.network = network
        self.no_cache = no_cache
        self.pull = pull
        self.cancelled = cancelled or (lambda: False)
        self.dir = config.subdir("build")
        self.cache_path = self.dir / "cache.json"

    # ------------------------------------------------------------ cache
    def _cache_get(self, key: str):
        if self.no_cache:
            return None
        try:
            entry = json.loads(self.cache_path.read_text()).get(key)
        except (OSError, ValueError):
            return None
        if not entry:
            return None
        try:
            image = self.images.get(entry["id"])
        except (EngineError, KeyError):
            return None
        if image.manifest_digest != entry["manifest"]:  # another manifest with that config
            image = next((i for i in self.images.list() if i.manifest_digest == entry["manifest"]), None)
        return image

    def _cache_put(self, key: str, image) -> None:
        with lock(self.dir / "cache.lock", exclusive=True):
            try:
                data = json.loads(self.cache_path.read_text())
            except (OSError, ValueError):
                data = {}
            data[key] = {"id": image.id, "manifest": image.manifest_digest}
            write_json_atomic(self.cache_path, data, fsync=False)

    # ------------------------------------------------------------ entry point
    def build(self, context, dockerfile: str = "Dockerfile", *, tags=(), build_args: dict | None = None,
              target: str | None = None, labels: dict | None = None):
        """Build from ``context`` (a directory, or a tar file / file object) and return the
        image. ``dockerfile`` is relative to the context (or an absolute path)."""
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        refs = [parse(t) for t in tags]  # a bad tag fails before anything is done
        with contextlib.ExitStack() as stack:
            # What is read from the context is read inside it: a symlink that leaves it is refused.
            ctx = stack.enter_context(Root(self._context_dir(context, stack), BENEATH))
            try:
                if os.path.isabs(dockerfile):  # the caller's own file (the console writes one)
                    text = Path(dockerfile).read_text()
                else:
                    with ctx.open_regular(dockerfile) as f:
                        text = f.read().decode()
            except (OSError, UnicodeDecodeError):
                raise NotFound(f"cannot read the Dockerfile {dockerfile}: no such file in the context") from None
            try:
                with ctx.open_regular(".dockerignore") as f:
                    ignore = Ignore(f.read().decode())
            except (OSError, UnicodeDecodeError):
                ignore = Ignore()
            instructions = df.parse(text)
            stack.enter_context(self.images.content.lease())
            image = self._run(instructions, ctx, ignore, dict(build_args or {}), target, labels or {})
        for ref in refs:
            image = self.images.register(image.manifest_digest, ref)
            self.on_line(f"Successfully tagged {ref.familiar}")
        return image

    def _context_dir(self, context, stack: contextlib.ExitStack) -> Path:
        if isinstance(context, str | Path) and Path(context).is_dir():
            return Path(context).resolve()
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="berth-build-")))
        try:
            if isinstance(context, str | Path):
                tar = tarfile.open(context, mode="r:*")
            else:
                tar = tarfile.open(fileobj=context, mode="r|*")
            with tar:
                extract_all(tar, tmp)
        except (OSError, tarfile.TarError) as exc:
            raise InvalidArgument(f"the build context is neither a directory nor a tar: {exc}") from None
        return tmp

    # ------------------------------------------------------------ stages
    def _run(self, instructions, root: Root, ignore: Ignore, build_args: dict, target, labels):
        global_args: dict[str, str] = {}
        self._global_args = global_args  # a bare "ARG NAME" in a stage takes its global value
        stages: list[Stage] = []
        total = len(instructions)
        used_args: set[str] = set()
        self._precheck(instructions)
        stage = None
        if target is not None and not any(
                ins.keyword == "FROM" and re.search(rf"\s[aA][sS]\s+{re.escape(target)}\s*$", ins.args)
                for ins in instructions):
            raise BuildError(f"target stage {target!r} could not be found")
        for number, ins in enumerate(instructions, 1):
            step = f"Step {number}/{total} : {ins.original}"
            if ins.keyword == "ARG" and stage is None:
                for key, value in df.key_values(ins, ins.args):
                    global_args[key] = build_args.get(key, value) if key in build_args else (value or "")
                    used_args.add(key)
                self.on_line(step)
                continue
            if ins.keyword == "FROM":
                if stage is not None and target is not None and stage.name == target:
                    break
                self.on_line(step)
                stage = self._from(ins, global_args, stages)
                stages.append(stage)
                self.on_line(f" ---> {self._short(stage.image)}")
                continue
            self.on_line(step)
            if self.cancelled():
                raise BuildError(f"Dockerfile:{ins.line}: the build was cancelled")
            try:
                self._step(stage, ins, root, ignore, build_args, used_args, stages)
            except (BuildError, df.DockerfileError):
                raise
            except EngineError as exc:
                raise BuildError(f"Dockerfile:{ins.line}: {ins.keyword}: {exc}") from None
            self.on_line(f" ---> {self._short(stage.image)}")
        final = stage
        if labels:
            final.config.setdefault("Labels", {}).update(labels)
            final.image = self._config_image(final, "LABEL " + " ".join(f"{k}={v}" for k, v in labels.items()))
        if final.image is None:
            final.image = self._config_image(final, "")
        unused = sorted(set(build_args) - used_args)
        if unused:
            self.on_line(f"[Warning] One or more build-args {unused} were not consumed")
        self.on_line(f"Successfully built {self._short(final.image)}")
        return final.image

    @staticmethod
    def _short(image) -> str:
        return image.id.removeprefix("sha256:")[:12] if image is not None else "scratch"

    def _precheck(self, instructions) -> None:
        """Sources of COPY/ADD that leave the context fail before any step runs."""
        for ins in instructions:
            if ins.keyword in ("COPY", "ADD") and "from" not in ins.flags:
                words = ins.json_args() or df.split_words(ins.args)
                for src in words[:-1]:
                    if "$" in src or re.match(r"^https?://", src):
                        continue
                    self._in_context(ins, src)

    @staticmethod
    def _in_context(ins, src: str) -> str:
        """``src`` as a clean path relative to the source root; climbing out is refused."""
        rel = os.path.normpath(src.lstrip("/")) if src.strip("/") else "."
        if rel == ".." or rel.startswith("../"):
            raise BuildError(f"Dockerfile:{ins.line}: {ins.keyword} failed: forbidden path outside the "
                             f"build context: {src}")
        return rel

    def _from(self, ins: df.Instruction, global_args: dict, stages: list[Stage]) -> Stage:
        words = df.split_words(df.expand(ins.args, global_args, ins))
        name = None
        if len(words) == 3 and words[1].lower() == "as":
            name = words[2]
        elif len(words) != 1:
            raise ins.error("use FROM image [AS name]")
        ref = words[0]
        stage = Stage(name=name, index=len(stages), image=None, args={})
        if ref == "scratch":
            return stage
        previous = next((s for s in stages if s.name == ref), None)
        if previous is not None:
            image = previous.image
            if image is None:
                image = previous.image = self._config_image(previous, "")
        else:
            image = self._image(ins, ref)
        stage.image = image
        stage.config = json.loads(json.dumps((image.config or {}).get("config") or {}))
        for trigger in stage.config.pop("OnBuild", None) or []:
            self.on_line(f" ---> ONBUILD {trigger} (recorded, not run)")
        return stage

    def _image(self, ins: df.Instruction, ref: str):
        try:
            return self.images.get(ref)
        except NotFound:
            pass
        except InvalidArgument as exc:
            raise ins.error(str(exc)) from None
        self.on_line(f"Pulling {ref}")
        try:
            if self.pull is not None:
                return self.pull(ref)
            from engine.distribution import transfer as distribution

            return distribution.pull(self.images, ref, progress=None)
        except EngineError as exc:
            raise BuildError(f"Dockerfile:{ins.line}: FROM {ref}: {exc}") from None

    # ------------------------------------------------------------ steps
    def _key(self, stage: Stage, *parts: str) -> str:
        parent = stage.image.manifest_digest if stage.image is not None else "scratch"
        raw = json.dumps([parent, json.dumps(self._clean(stage.config), sort_keys=True), *parts])
        return hashlib.sha256(raw.encode()).hexdigest()

    def _cached(self, stage: Stage, key: str) -> bool:
        hit = self._cache_get(key)
        if hit is None:
            return False
        self.on_line(" ---> Using cache")
        stage.image = hit
        stage.config = json.loads(json.dumps(hit.config.get("config") or {}))
        return True

    def _config_image(self, stage: Stage, text: str):
        return make_image(self.images, stage.image, self._clean(stage.config),
                          created_by=f"/bin/sh -c #(nop)  {text}" if text else "", empty_layer=True)

    @staticmethod
    def _clean(config: dict) -> dict:
        return {k: v for k, v in config.items() if v not in (None, "", [], {})}

    def _step(self, stage: Stage, ins: df.Instruction, root: Root, ignore: Ignore, build_args: dict,
              used_args: set, stages: list[Stage]) -> None:
        kw = ins.keyword
        if kw == "ARG":
            for key, value in df.key_values(ins, ins.args):
                if key in build_args:
                    stage.args[key] = build_args[key]
                elif value is None:
                    stage.args[key] = self._global_args.get(key, "")
                else:
                    stage.args[key] = df.expand(value, stage.env(), ins)
                used_args.add(key)
            return
        if kw == "RUN":
            return self._run_step(stage, ins)
        if kw in ("COPY", "ADD"):
            return self._copy_step(stage, ins, root, ignore, stages)
        text = df.expand(ins.args, stage.env(), ins) if kw in df.EXPANDED else ins.args
        before = json.dumps(self._clean(stage.config), sort_keys=True)
        self._apply_config(stage, ins, text)
        key = self._key(stage, "config", kw, text, before)
        if self._cached(stage, key):
            return
        layer = self._workdir_layer(stage) if kw == "WORKDIR" else None
        if layer is not None:
            stage.image = make_image(self.images, stage.image, self._clean(stage.config), layer=layer,
                                     created_by=f"/bin/sh -c #(nop) WORKDIR {text}")
        else:
            stage.image = self._config_image(stage, f"{kw} {text}")
        self._cache_put(key, stage.image)

    def _workdir_layer(self, stage: Stage):
        """WORKDIR makes its directory when the image lacks it, as Docker does: resolved inside
        the image (a symlink on the way is followed there), as a layer of directories."""
        workdir = stage.config.get("WorkingDir") or "/"
        with self._mounted(stage.image) as here:
            if here is None or here.is_dir(workdir):
                return None
            try:
                resolved = here.resolve(workdir).lstrip("/")
            except OSError as exc:
                raise InvalidArgument(f"{workdir}: {exc.strerror}") from None
            with tempfile.TemporaryFile(dir=self.images.content.ingest_dir) as spool:
                with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar, \
                        contextlib.closing(_LayerTar(tar, here, None, None)) as layer:
                    layer.parents(f"{resolved}/-")
                return store_layer(self.images.content, spool)

    def _apply_config(self, stage: Stage, ins: df.Instruction, text: str) -> None:
        cfg, kw = stage.config, ins.keyword
        if kw == "ENV":
            env = list(cfg.get("Env") or [])
            for key, value in df.key_values(ins, text):
                env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
            cfg["Env"] = env
        elif kw == "LABEL":
            cfg.setdefault("Labels", {})
            cfg["Labels"] = dict(cfg["Labels"] or {}, **dict(df.key_values(ins, text)))
        elif kw == "MAINTAINER":
            cfg.setdefault("Labels", {})
            cfg["Labels"] = dict(cfg["Labels"] or {}, maintainer=text)
        elif kw == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for port in text.split():
                number, _, proto = port.partition("/")
                if not number.isdigit() or not 0 < int(number) < 65536 or proto not in ("", "tcp", "udp", "sctp"):
                    raise ins.error(f"invalid port {port!r}")
                ports[f"{int(number)}/{proto or 'tcp'}"] = {}
            cfg["ExposedPorts"] = ports
        elif kw == "USER":
            cfg["User"] = text.strip()
        elif kw == "WORKDIR":
            current = cfg.get("WorkingDir") or "/"
            cfg["WorkingDir"] = os.path.normpath(os.path.join(current, text.strip()))
        elif kw == "STOPSIGNAL":
            from engine.containers.inputs import parse_signal

            parse_signal(text.strip())  # InvalidArgument on a bad one
            cfg["StopSignal"] = text.strip()
        elif kw == "VOLUME":
            volumes = dict(cfg.get("Volumes") or {})
            for v in ins.json_args() or text.split():
                if not v:
                    raise ins.error("a volume path may not be empty")
                volumes[v] = {}
            cfg["Volumes"] = volumes
        elif kw in ("CMD", "ENTRYPOINT"):
            form = ins.json_args()
            value = form if form is not None else stage.shell + [text]
            if kw == "ENTRYPOINT" and "Cmd" in cfg and not getattr(stage, "cmd_set", False):
                cfg["Cmd"] = None  # an inherited CMD is reset by ENTRYPOINT
            if kw == "CMD":
                stage.cmd_set = True  # type: ignore[attr-defined]
            cfg["Cmd" if kw == "CMD" else "Entrypoint"] = value
        elif kw == "SHELL":
            form = ins.json_args()
            if not form:
                raise ins.error("SHELL needs the JSON form, e.g. SHELL [\"/bin/sh\", \"-c\"]")
            stage.shell = form
            cfg["Shell"] = form
        elif kw == "ONBUILD":
            if text.split()[0].upper() in ("ONBUILD", "FROM", "MAINTAINER"):
                raise ins.error(f"{text.split()[0]} is not allowed as an ONBUILD trigger")
            cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [text]
        elif kw == "HEALTHCHECK":
            cfg["Healthcheck"] = self._healthcheck(stage, ins, text)
        else:  # pragma: no cover - the parser knows every keyword
            raise ins.error("not supported")

    def _healthcheck(self, stage: Stage, ins: df.Instruction, text: str) -> dict:
        words = text.split(None, 1)
        if not words:
            raise ins.error("needs NONE or CMD")
        if words[0].upper() == "NONE":
            if len(words) > 1 or ins.flags:
                raise ins.error("NONE takes no arguments")
            return {"Test": ["NONE"]}
        if words[0].upper() != "CMD" or len(words) < 2:
            raise ins.error("use HEALTHCHECK [options] CMD command, or HEALTHCHECK NONE")
        rest = df.Instruction(ins.line, "CMD", words[1])
        form = rest.json_args()
        check: dict = {"Test": ["CMD", *form] if form is not None else ["CMD-SHELL", words[1]]}
        for flag, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"),
                          ("start-interval", "StartInterval")):
            if flag in ins.flags:
                check[key] = _duration(ins, ins.flags[flag])
        if "retries" in ins.flags:
            if not ins.flags["retries"].isdigit():
                raise ins.error("--retries must be a number")
            check["Retries"] = int(ins.flags["retries"])
        return check

    # ------------------------------------------------------------ RUN
    def _run_step(self, stage: Stage, ins: df.Instruction) -> None:
        form = ins.json_args()
        command = form if form is not None else stage.shell + [ins.args]
        args_env = [f"{k}={v}" for k, v in sorted(stage.args.items())
                    if not any(e.startswith(k + "=") for e in stage.config.get("Env") or [])]
        key = self._key(stage, "run", json.dumps(command), json.dumps(args_env))
        if self._cached(stage, key):
            return
        if stage.image is None:
            raise ins.error("cannot RUN in an empty (scratch) image: there is no shell")
        image = stage.image
        if json.dumps(self._clean(stage.config), sort_keys=True) != \
                json.dumps(self._clean((image.config or {}).get("config") or {}), sort_keys=True):
            image = stage.image = self._config_image(stage, "")
        workdir = stage.config.get("WorkingDir") or "/"
        container = self.containers.create(image.id, command, entrypoint=[], env=args_env,
                                           user=stage.config.get("User") or None, workdir=workdir,
                                           network=self.network, labels={BUILD_LABEL: "run"})
        try:
            self.on_line(f" ---> Running in {container.id[:12]}")
            self.containers.start(container.id)
            for record in self.containers.logs(container.id, follow=True):
                self.on_line(record["log"].rstrip("\n"))
                if self.cancelled():
                    raise BuildError(f"Dockerfile:{ins.line}: the build was cancelled")
            code = self.containers.wait(container.id)
            if code != 0:
                raise BuildError(f"Dockerfile:{ins.line}: RUN {' '.join(command)}: returned a non-zero "
                                 f"code: {code}")
            with tempfile.TemporaryFile(dir=self.images.content.ingest_dir) as raw, \
                    tempfile.TemporaryFile(dir=self.images.content.ingest_dir) as clean:
                self.containers.snapshots.write_diff(container.id, raw)
                raw.seek(0)
                filter_layer(raw, clean, ENGINE_FILES | self._volume_paths(stage))
                layer = store_layer(self.images.content, clean)
        finally:
            with contextlib.suppress(EngineError):
                self.containers.remove(container.id, force=True)
        stage.image = make_image(self.images, image, self._clean(stage.config), layer=layer,
                                 created_by=" ".join(command))
        self._cache_put(key, stage.image)

    @staticmethod
    def _volume_paths(stage: Stage) -> set[str]:
        return {v.strip("/") for v in (stage.config.get("Volumes") or {})}

    # ------------------------------------------------------------ COPY, ADD
    @contextlib.contextmanager
    def _mounted(self, image):
        """The merged root filesystem of ``image`` as a ``Root`` (symlinks resolve inside it,
        as in the container), read-only use, removed afterwards."""
        if image is None or not image.layers:
            yield None
            return
        key = "build-" + secrets.token_hex(8)
        lowers = self.containers.layers.ensure(image)
        path = self.containers.snapshots.prepare(key, lowers)
        try:
            with Root(path) as root:
                yield root
        finally:
            with contextlib.suppress(EngineError):
                self.containers.snapshots.remove(key)

    def _copy_step(self, stage: Stage, ins: df.Instruction, root: Root, ignore: Ignore, stages) -> None:
        words = ins.json_args()
        if words is None:
            words = df.split_words(ins.args)
        words = [df.expand(w, stage.env(), ins) for w in words]
        if len(words) < 2:
            raise ins.error("needs at least one source and a destination")
        sources, dest = words[:-1], words[-1]
        if not dest.startswith("/"):
            dest = os.path.join(stage.config.get("WorkingDir") or "/", dest) + ("/" if dest.endswith("/") else "")
        chmod = None
        if ins.flags.get("chmod"):
            try:
                chmod = int(ins.flags["chmod"], 8)
            except ValueError:
                raise ins.error(f"invalid --chmod {ins.flags['chmod']!r} (octal, e.g. 0755)") from None
        with contextlib.ExitStack() as stack:
            from_root, use_ignore = root, ignore
            if ins.flags.get("from"):
                if ins.keyword == "ADD":
                    raise ins.error("--from is for COPY")
                source_image = self._from_flag(ins, ins.flags["from"], stages)
                from_root = stack.enter_context(self._mounted(source_image))
                use_ignore = Ignore()
                if from_root is None:
                    raise ins.error(f"{ins.flags['from']} has no files")
            here = stack.enter_context(self._mounted(stage.image))
            owner = self._owner(ins, ins.flags.get("chown"), here)
            external = bool(ins.flags.get("from"))
            files = self._collect(ins, from_root, use_ignore, sources, external=external)
            spool = stack.enter_context(tempfile.TemporaryFile(dir=self.images.content.ingest_dir))
            try:
                self._write_tar(ins, spool, from_root, files, dest, owner, chmod, here, use_ignore)
            except OSError as exc:
                where = "source image" if external else "build context"
                raise ins.error(f"cannot read {exc.filename or 'a source'} in the {where}: "
                                f"{exc.strerror or exc}") from None
            spool.seek(0)
            digest = hashlib.sha256()
            while chunk := spool.read(1 << 20):
                digest.update(chunk)
            key = self._key(stage, ins.keyword, json.dumps(words), json.dumps(ins.flags, sort_keys=True),
                            digest.hexdigest())
            if self._cached(stage, key):
                return
            layer = store_layer(self.images.content, spool)
        stage.image = make_image(self.images, stage.image, self._clean(stage.config), layer=layer,
                                 created_by=f"/bin/sh -c #(nop) {ins.keyword} "
                                            f"{' '.join(words[:-1])} in {dest}")
        self._cache_put(key, stage.image)

    def _from_flag(self, ins, name: str, stages: list[Stage]):
        for s in stages[:-1]:
            if s.name == name or str(s.index) == name:
                if s.image is None:
                    return None
                return s.image
        if name.isdigit():
            raise ins.error(f"--from={name}: no such stage")
        return self._image(ins, name)

    def _owner(self, ins, chown: str | None, rootfs: Root | None) -> tuple[int, int] | None:
        if not chown:
            return None
        user, _, group = chown.partition(":")
        if user.isdigit() and (not group or group.isdigit()):
            return int(user), int(group or user)
        if rootfs is None:
            raise ins.error(f"--chown={chown}: names need /etc/passwd and /etc/group in the image")
        from engine.runtime.users import resolve

        try:
            resolved = resolve(rootfs.path, chown if group else user)
        except InvalidArgument as exc:
            raise ins.error(f"--chown={chown}: {exc}") from None
        return resolved.uid, resolved.gid

    def _collect(self, ins, root: Root, ignore: Ignore, sources: list[str], external: bool) -> list[tuple[str, str]]:
        """(path resolved inside ``root``, its name for .dockerignore) for each source, in order.
        Symlinks resolve inside the root: a stage's ``/escape -> /`` means the stage's "/"; in
        the context (BENEATH) a symlink that leaves it is refused."""
        out = []
        where = "source image" if external else "build context"
        for src in sources:
            if re.match(r"^[a-z]+://", src):
                raise ins.error(f"{src}: sources from URLs are not supported (no network at build time "
                                "but for pulls)")
            rel = self._in_context(ins, src)
            if any(c in rel for c in "*?["):
                matches = [m for m in _glob(root, rel) if not ignore.ignored(m)]
            else:
                matches = [rel] if rel == "." or not ignore.ignored(rel) else []
            found = []
            for match in matches:
                try:
                    root.stat(match)
                    real = root.resolve(match)
                except OSError as exc:
                    if exc.errno == errno.EXDEV:
                        raise ins.error(f"forbidden path outside the build context: {src}") from None
                    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                        continue
                    raise ins.error(f"{src}: {exc.strerror}") from None
                found.append((real, real.lstrip("/") or "."))
            if not found:
                raise ins.error(f"{src}: no such file or directory in the {where}")
            out.extend(found)
        return out

    def _write_tar(self, ins, spool, src_root: Root, files, dest: str, owner, chmod, here: Root | None,
                   ignore: Ignore) -> None:
        """The layer of a COPY/ADD: ``files`` (paths in ``src_root``) under ``dest``, which is
        resolved inside the image (``here``) as Docker does: a destination through a symlink
        of the image lands at the symlink's target, inside the image."""
        dest_is_dir = dest.endswith("/") or len(files) > 1 or any(src_root.is_dir(p) for p, _ in files)
        if here is not None:
            if not dest_is_dir:
                dest_is_dir = here.is_dir(dest)
            try:
                dest = here.resolve(dest)
            except OSError as exc:
                raise ins.error(f"destination {dest}: {exc.strerror}") from None
        dest = os.path.normpath(dest)
        base = dest.lstrip("/")
        with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar, \
                contextlib.closing(_LayerTar(tar, here, owner, chmod)) as layer:
            for path, rel_root in files:
                if ins.keyword == "ADD" and not src_root.is_dir(path) and _is_archive(src_root, path):
                    with src_root.open_regular(path) as archive:
                        layer.unpack(ins, archive, base)
                    continue
                if src_root.is_dir(path):
                    if base:
                        layer.parents(f"{base}/-")  # the destination and its parents
                    fd = src_root.open_dir(path)
                    try:
                        for rel, dir_fd, name, st in walk(fd):
                            if ignore.ignored(os.path.normpath(os.path.join(rel_root, rel))):
                                continue
                            layer.add(dir_fd, name, st, f"{base}/{rel}" if base else rel)
                    finally:
                        os.close(fd)
                else:
                    arc = f"{base}/{PurePosixPath(path).name}" if dest_is_dir else base
                    if not arc:
                        raise ins.error("cannot copy a file to /")
                    dir_fd, name = src_root.parent(path, follow_last=True)
                    try:
                        layer.add(dir_fd, name, os.stat(name, dir_fd=dir_fd, follow_symlinks=False), arc)
                    finally:
                        os.close(dir_fd)


class _LayerTar:
    """Writes a COPY/ADD layer: entries read through directory fds, parents as the image has
    them, hard links kept between the files of this layer."""

    def __init__(self, tar: tarfile.TarFile, here: Root | None, owner, chmod):
        self.tar, self.owner, self.chmod = tar, owner, chmod
        self.here = here.with_policy(NO_SYMLINKS) if here is not None else None
        self.written: set[str] = set()
        self.inodes: dict[tuple[int, int], str] = {}

    def close(self) -> None:
        if self.here is not None:
            self.here.close()

    def parents(self, arc: str) -> None:
        parts = PurePosixPath(arc).parts
        for n in range(1, len(parts)):
            name = "/".join(parts[:n])
            if name in self.written:
                continue
            self.written.add(name)
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            st = None
            if self.here is not None:
                with contextlib.suppress(OSError):
                    st = self.here.lstat(name)
            if st is not None and stat.S_ISDIR(st.st_mode):
                info.mode, info.uid, info.gid, info.mtime = st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_mtime
            else:
                info.mode, info.mtime = 0o755, 0
                if self.owner:
                    info.uid, info.gid = self.owner
            self.tar.addfile(info)

    def add(self, dir_fd: int, name: str, st: os.stat_result, arc: str) -> None:
        info = tarinfo_at(dir_fd, name, st, arc.lstrip("/"))
        if info is None:
            return  # sockets are not content
        if self.owner:
            info.uid, info.gid = self.owner
        if self.chmod is not None and not info.issym():
            info.mode = self.chmod
        self.parents(info.name)
        self.written.add(info.name)
        add_at(self.tar, info, dir_fd, name, st, self.inodes)

    def unpack(self, ins, archive, base: str) -> None:
        """ADD's local archive: its entries under ``base``. What a layer may not do is refused
        here, with the Dockerfile line: climbing out, writing through one of its own
        symlinks, hard links to anything but one of its own earlier files."""
        kinds: dict[str, str] = {}
        try:
            src = tarfile.open(fileobj=archive, mode="r:*")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ins.error(f"cannot read the archive: {exc}") from None
        with src:
            for member in src:
                name = _clean_member(ins, member.name)
                if not name:
                    continue
                parts = name.split("/")
                if any(kinds.get("/".join(parts[:n])) == "symlink" for n in range(1, len(parts))):
                    raise ins.error(f"archive entry {member.name!r} goes through a symlink of the archive")
                if member.islnk():
                    link = _clean_member(ins, member.linkname, member.name)
                    if kinds.get(link) not in ("file", "hardlink"):
                        raise ins.error(f"archive entry {member.name!r} is a hard link to {member.linkname!r}, "
                                        "which is not a file earlier in the archive")
                    member.linkname = f"{base}/{link}" if base else link
                kinds[name] = "symlink" if member.issym() else "dir" if member.isdir() else \
                    "hardlink" if member.islnk() else "file"
                member.name = f"{base}/{name}" if base else name
                self.parents(member.name)
                self.written.add(member.name)
                self.tar.addfile(member, src.extractfile(member) if member.isreg() else None)


def _clean_member(ins, path: str, name: str | None = None) -> str:
    """An archive member's path (or, with ``name``, its link), lexically cleaned."""
    try:
        return "/".join(lexical_parts(path))
    except ValueError:
        raise ins.error(f"archive entry {name or path!r} points outside the destination") from None


def _glob(root: Root, pattern: str) -> list[str]:
    """Paths under ``root`` matching ``pattern`` (``*``, ``?``, ``[...]`` per component),
    listed inside the root: a symlinked directory is listed where it points in the root."""
    candidates = [""]
    for comp in pattern.split("/"):
        if comp in ("", "."):
            continue
        following = []
        for cand in candidates:
            if any(c in comp for c in "*?["):
                try:
                    names = root.listdir(cand or ".")
                except OSError:
                    continue
                following += [f"{cand}/{n}" if cand else n for n in names if fnmatch.fnmatchcase(n, comp)]
            else:
                following.append(f"{cand}/{comp}" if cand else comp)
        candidates = following
    return sorted(c for c in candidates if c)


def _is_archive(root: Root, path: str) -> bool:
    try:
        with root.open_regular(path) as f:
            head = f.read(262)
    except OSError:
        return False  # not a regular file: copied as what it is
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"

def build(config: EngineConfig, context, dockerfile: str = "Dockerfile", *, tags=(),
          build_args: dict | None = None, target: str | None = None, labels: dict | None = None,
          on_line: LineFn | None = None, no_cache: bool = False, network: str = "bridge", containers=None,
          pull: Callable | None = None, cancelled: Callable[[], bool] | None = None):
    """Build an image; ``on_line`` gets each line of output as it happens. Returns the Image.
    See ``Builder`` for ``pull`` and ``cancelled``."""
    builder = Builder(config, containers, on_line=on_line, network=network, no_cache=no_cache, pull=pull,
                      cancelled=cancelled)
    return builder.build(context, dockerfile, tags=tags, build_args=build_args, target=target, labels=labels)

