"""Dockerfile builds on real runc: multi-stage, cache, the instructions, bad input."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from engine.build.builder import Builder, BuildError, Ignore
from engine.build.dockerfile import DockerfileError, expand, parse
from engine.errors import InvalidArgument
from tests.support.containers import all_leftovers

DOCKERFILE = """\
# syntax is ignored
ARG BASE=test/busybox
FROM $BASE AS builder
WORKDIR /src
COPY . /ctx/
COPY hello.txt ./
RUN echo built > /src/out.txt && cat hello.txt >> /src/out.txt \\
    && test ! -e /ctx/secret.txt && test -e /ctx/keep/a.txt

FROM test/busybox
ARG WHO=world
LABEL team=berth "two words"="yes"
ENV GREETING="hi ${WHO}" EMPTY=
COPY --from=builder /src/out.txt /app/
COPY --chown=app:app hello.txt /home/app/
ADD files.tar /opt/
USER app
WORKDIR /app
EXPOSE 8080 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=2 CMD true
ENTRYPOINT ["sh", "-c"]
CMD ["cat /app/out.txt /opt/inner/x.txt; echo $GREETING; id -u; ls -ln /home/app/hello.txt"]
"""


def make_context(tmp_path: Path, dockerfile: str = DOCKERFILE) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "hello.txt").write_text("hello\n")
    (ctx / "secret.txt").write_text("do not copy\n")
    (ctx / "keep").mkdir()
    (ctx / "keep" / "a.txt").write_text("a\n")
    (ctx / ".dockerignore").write_text("secret.txt\n*.tmp\n")
    data = b"inside the tar\n"
    with tarfile.open(ctx / "files.tar", "w") as tar:
        info = tarfile.TarInfo("inner/x.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return ctx


def build(engine, ctx, lines=None, **kw):
    builder = Builder(engine.config, engine, on_line=(lines.append if lines is not None else None), network="none")
    return builder.build(ctx, **kw)


def test_multi_stage_build_runs_and_second_build_is_cached(engine, tmp_path):
    ctx = make_context(tmp_path)
    lines: list[str] = []
    image = build(engine, ctx, lines, tags=["test/built:1"])
    assert any(line.startswith("Step 1/") for line in lines)
    assert any("Running in" in line for line in lines)
    assert lines[-1] == "Successfully tagged test/built:1"
    config = image.config["config"]
    assert config["User"] == "app" and config["WorkingDir"] == "/app"
    assert config["Labels"] == {"team": "berth", "two words": "yes"}
    assert "GREETING=hi world" in config["Env"] and "EMPTY=" in config["Env"]
    assert set(config["ExposedPorts"]) == {"8080/tcp", "53/udp"}
    assert config["Volumes"] == {"/data": {}} and config["StopSignal"] == "SIGINT"
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000, "Retries": 2}
    assert config["Entrypoint"] == ["sh", "-c"]
    c, code = engine.run("test/built:1", detach=False)
    out = "".join(r["log"] for r in engine.logs(c.id))
    assert code == 0, out
    assert out.startswith("built\nhello\ninside the tar\nhi world\n1000\n")
    assert " 1000 " in out.splitlines()[-1]  # --chown=app:app
    engine.remove(c.id)
    # the second build comes from the cache, step by step
    again: list[str] = []
    image2 = build(engine, ctx, again, tags=["test/built:1"])
    assert image2.id == image.id
    assert not any("Running in" in line for line in again)
    assert sum(" ---> Using cache" == line for line in again) >= 10
    # a change in the context is seen: the steps from the COPY on run again
    (ctx / "hello.txt").write_text("changed\n")
    third: list[str] = []
    image3 = build(engine, ctx, third)
    assert image3.id != image.id and any("Running in" in line for line in third)
    assert all_leftovers(engine) == []
    assert not [p for p in (engine.config.root / "snapshots").iterdir() if p.name.startswith("build-")]


def test_build_steps_are_intermediate_images_listed_with_a_and_removed_with_the_image(engine, tmp_path):
    from engine.errors import Conflict

    images = engine.images
    base = images.get("test/busybox")
    ctx = make_context(tmp_path, "FROM test/busybox\nRUN echo a > /a\nRUN echo b > /b\nENV X=1\n")
    image = build(engine, ctx, tags=["test/steps:1"])
    steps = [i for i in images.list(all=True) if i.id not in (image.id, base.id)]
    assert len(steps) == 2 and all(not i.repo_tags for i in steps)
    assert {i.id for i in images.list()} == {image.id, base.id}  # as `docker images`: no steps
    assert image.parent in {i.id for i in steps} and images.get(image.parent).parent in {i.id for i in steps}
    assert images.get(image.id).inspect()["Parent"] == image.parent
    with pytest.raises(Conflict, match="dependent child images"):
        images.remove(image.parent, force=True)
    # A tagged image with children: by ID, forced, its names go and it stays for them.
    images.tag(image.parent, "test/step:kept")
    assert images.remove(image.parent, force=True) == ["Untagged: test/step:kept"]
    assert images.get(image.parent).repo_tags == []
    pruned, _ = images.prune()  # steps of a tagged image are not dangling
    assert image.parent not in pruned and images.get(image.parent)
    lines = images.remove("test/steps:1")
    assert f"Deleted: {image.id}" in lines and all(f"Deleted: {i.id}" in lines for i in steps)
    assert {i.id for i in images.list(all=True)} == {base.id}  # its base stays


def test_build_args_target_and_context_tar(engine, tmp_path):
    ctx = make_context(tmp_path, "ARG G=global\nFROM test/busybox AS one\nARG V=default\nARG G\n"
                                 "RUN echo $V > /v && echo $G > /g\n"
                                 "FROM one AS two\nRUN cat /v\n")
    image = build(engine, ctx, build_args={"V": "given"}, target="one", tags=["test/one"])
    c, code = engine.run("test/one", ["cat", "/v"], detach=False)
    assert code == 0 and "".join(r["log"] for r in engine.logs(c.id)) == "given\n"
    c, code = engine.run("test/one", ["cat", "/g"], detach=False)
    assert "".join(r["log"] for r in engine.logs(c.id)) == "global\n"
    assert image.config["config"].get("Cmd") == ["sh"]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(ctx, arcname=".")
    buf.seek(0)
    lines: list[str] = []
    build(engine, buf, lines, build_args={"V": "given"})
    assert "given" in lines


def test_from_scratch_copy(engine, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY bin /bin\nCMD [\"/bin/busybox\", \"echo\", \"from scratch\"]\n")
    (ctx / "bin").mkdir()
    os.link("/bin/busybox", ctx / "bin" / "busybox") if False else (ctx / "bin" / "busybox").write_bytes(
        Path("/bin/busybox").read_bytes())
    os.chmod(ctx / "bin" / "busybox", 0o755)
    build(engine, ctx, tags=["test/scratch"])
    c, code = engine.run("test/scratch", detach=False)
    assert code == 0 and "".join(r["log"] for r in engine.logs(c.id)) == "from scratch\n"


def test_errors_name_the_line_and_leave_nothing(engine, tmp_path):
    before = engine.images.list()
    for n, (text, line) in enumerate((("FROM test/busybox\nFROBNICATE x\n", 2),
                       ("FROM test/busybox\nRUN true\nCOPY ../outside /x\n", 3),
                       ("FROM test/busybox\nCOPY missing.txt /x\n", 2),
                       ("FROM test/busybox\nEXPOSE 99999\n", 2),
                       ("FROM test/busybox\n\nRUN exit 3\n", 3))):
        ctx = tmp_path / f"c{n}"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(text)
        with pytest.raises(InvalidArgument, match=f"Dockerfile:{line}"):
            build(engine, ctx)
    escape = tmp_path / "escape"
    escape.mkdir()
    (escape / "link").symlink_to("/etc")
    for text in ("FROM test/busybox\nCOPY link/passwd /x\n", "FROM test/busybox\nCOPY link /x\n"):
        (escape / "Dockerfile").write_text(text)
        with pytest.raises(InvalidArgument, match="Dockerfile:2: .*outside the build context"):
            build(engine, escape)
    with pytest.raises(InvalidArgument, match="first instruction must be FROM"):
        parse("RUN true\n")
    assert all_leftovers(engine) == []
    assert not [p for p in (engine.config.root / "snapshots").iterdir() if p.name.startswith("build-")]
    # only a step that worked (cache) may have been added: RUN exit 3 made no image
    assert len(engine.images.list()) <= len(before) + 1


def test_parser_and_ignore_rules():
    ins = parse("FROM a\nRUN echo a \\\n  # comment inside\n  b\nCOPY --chown=1:2 a b\n")
    assert [i.keyword for i in ins] == ["FROM", "RUN", "COPY"]
    assert ins[1].args == "echo a b" and ins[2].flags == {"chown": "1:2"}
    with pytest.raises(DockerfileError, match="unknown flag"):
        parse("FROM a\nCOPY --bogus=1 a b\n")
    assert expand("${A:-x}-$B-${B:+y}-\\$C", {"B": "b"}) == "x-b-y-$C"
    ignore = Ignore("*.log\n!keep.log\nbuild/\n**/tmp\n")
    assert ignore.ignored("a.log") and not ignore.ignored("keep.log")
    assert ignore.ignored("build/x/y") and ignore.ignored("a/b/tmp") and not ignore.ignored("src/a.py")


def test_builderror_is_invalid_argument():
    assert issubclass(BuildError, InvalidArgument)


def test_built_image_is_pulled_and_run_by_docker(engine, tmp_path, open_registry):
    """A multi-stage build pushed to a local registry; Debian's docker pulls and runs it."""
    from engine.distribution import transfer as dist
    from tests.support.dockerd import run_dockerd

    ctx = make_context(tmp_path, "FROM test/busybox AS builder\nRUN echo made by berth > /made\n"
                                 "FROM test/busybox\nCOPY --from=builder /made /made\nCOPY hello.txt /\n"
                                 "RUN rm /etc/os-release\nCMD [\"sh\", \"-c\", \"cat /made /hello.txt; "
                                 "test -e /etc/os-release || echo gone\"]\n")
    name = f"{open_registry.host}/built/app:1"
    build(engine, ctx, tags=[name])
    dist.push(engine.images, name)
    with run_dockerd(insecure_registries=(open_registry.host,)) as daemon:
        daemon.docker("pull", name)
        out = daemon.docker("run", "--rm", "--network", "none", name).stdout.decode()
    assert out == "made by berth\nhello\ngone\n"


def test_a_cancelled_build_stops_and_leaves_no_container(engine, tmp_path):
    ctx = make_context(tmp_path, "FROM test/busybox\nRUN echo started; sleep 30\nRUN true\n")
    lines: list[str] = []
    builder = Builder(engine.config, engine, on_line=lines.append, network="none",
                      cancelled=lambda: "started" in lines)
    with pytest.raises(BuildError, match="Dockerfile:2: the build was cancelled"):
        builder.build(ctx)
    assert all_leftovers(engine) == []
