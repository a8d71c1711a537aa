"""Image references parse and normalise the way `docker` does, and bad ones say what is wrong."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import InvalidArgument
from engine.images.reference import Reference, parse, parse_repository

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "text, full, familiar",
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1", "busybox:1"),
        ("ns/app", "docker.io/ns/app:latest", "ns/app:latest"),
        ("ns/sub/app:v1", "docker.io/ns/sub/app:v1", "ns/sub/app:v1"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("localhost:5000/app:1", "localhost:5000/app:1", "localhost:5000/app:1"),
        ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest", "127.0.0.1:5000/a/b:latest"),
        ("[::1]:5000/app", "[::1]:5000/app:latest", "[::1]:5000/app:latest"),
        (
            "registry.cn-hangzhou.aliyuncs.com/ns/app:2",
            "registry.cn-hangzhou.aliyuncs.com/ns/app:2",
            "registry.cn-hangzhou.aliyuncs.com/ns/app:2",
        ),
        (f"busybox@{D}", f"docker.io/library/busybox@{D}", f"busybox@{D}"),
        (f"busybox:1@{D}", f"docker.io/library/busybox:1@{D}", f"busybox:1@{D}"),
        ("a_b-c__d/x--y.z", "docker.io/a_b-c__d/x--y.z:latest", "a_b-c__d/x--y.z:latest"),
        ("my.host/app", "my.host/app:latest", "my.host/app:latest"),
        ("app:V1.0_rc-1", "docker.io/library/app:V1.0_rc-1", "app:V1.0_rc-1"),
    ],
)
def test_normalisation_table(text, full, familiar):
    ref = parse(text)
    assert str(ref) == full
    assert ref.familiar == familiar
    assert parse(str(ref)) == ref  # stable


def test_parts_and_api_host():
    ref = parse("busybox")
    assert ref == Reference("docker.io", "library/busybox", "latest", None)
    assert ref.name == "docker.io/library/busybox"
    assert ref.api_host == "registry-1.docker.io"
    assert parse("localhost:5000/app").api_host == "localhost:5000"
    assert parse("registry.cn-hangzhou.aliyuncs.com/ns/app").api_host == "registry.cn-hangzhou.aliyuncs.com"
    digested = parse(f"busybox@{D}")
    assert digested.tag is None and digested.digest == D
    assert parse("busybox", default_tag=False).tag is None


def test_with_tag_and_digest():
    ref = parse("localhost:5000/app:1")
    assert str(ref.with_tag("2")) == "localhost:5000/app:2"
    assert str(ref.with_digest(D)) == f"localhost:5000/app:1@{D}"
    assert ref.with_digest(D).with_tag("3").digest is None
    with pytest.raises(InvalidArgument):
        ref.with_tag("-bad")
    with pytest.raises(InvalidArgument):
        ref.with_digest("sha256:abc")


@pytest.mark.parametrize(
    "text, says",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("Busybox", "lowercase"),
        ("ns/MyApp:1", "lowercase"),
        ("busybox:", "invalid tag"),
        ("busybox:-x", "invalid tag"),
        ("busybox:" + "t" * 129, "invalid tag"),
        ("busybox@sha256:abc", "64"),
        ("busybox@sha256:" + "A" * 64, "64"),
        ("busybox@md5:" + "a" * 32, "only sha256"),
        ("busybox@", "digest"),
        ("ns//app", "empty path component"),
        ("app-", "invalid path component"),
        ("a..b", "invalid path component"),
        ("/app", "empty path component"),
        ("bad_host.com:port/app", "registry host"),
        (":tag", "no repository"),
        ("a" * 64, "64-byte hexadecimal"),
        ("busy box", "whitespace"),
        ("x/" + "a" * 260, "longer than 255"),
        ("a@b@c", "more than one"),
    ],
)
def test_bad_references_say_what_is_wrong(text, says):
    with pytest.raises(InvalidArgument) as info:
        parse(text)
    assert says in str(info.value)


def test_repository_only():
    assert parse_repository("localhost:5000/app").name == "localhost:5000/app"
    with pytest.raises(InvalidArgument):
        parse_repository("app:1")


_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_separator = st.sampled_from(["_", "__", "-", "--", "."])
_component = st.builds(lambda a, s, b: a + (s + b if b else ""), _alnum, _separator,
                       st.one_of(st.just(""), _alnum))
_host = st.one_of(
    st.just(""),
    st.just("localhost/"),
    st.integers(1, 65535).map(lambda port: f"localhost:{port}/"),
    st.builds(lambda a, b: f"{a}.{b}/", _alnum, st.sampled_from(["com", "io", "cn"])),
)
_tag = st.builds(lambda a, b: a + b, st.sampled_from(["v", "1", "_", "Latest"]),
                 st.text("abcXYZ019_.-", max_size=12))


@settings(max_examples=200, deadline=None)
@given(_host, st.lists(_component, min_size=1, max_size=3), st.one_of(st.none(), _tag),
       st.one_of(st.none(), st.text("0123456789abcdef", min_size=64, max_size=64)))
def test_generated_references_normalise_stably(host, path, tag, hexdigest):
    if not host and len(path) > 1 and "." in path[0]:
        path[0] = path[0].replace(".", "-")  # a first component with a dot is a registry host
    text = host + "/".join(path) + (f":{tag}" if tag else "") + (f"@sha256:{hexdigest}" if hexdigest else "")
    ref = parse(text)
    assert parse(str(ref)) == ref
    assert parse(ref.familiar) == ref
    assert ref.repository.endswith(path[-1])
    assert ref.tag == (tag or (None if hexdigest else "latest"))
