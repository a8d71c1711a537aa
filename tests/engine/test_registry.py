"""The registry client and credentials, against a real docker-registry and the token server."""

from __future__ import annotations

import io
import json
import stat
import time

import pytest

from engine.distribution import credentials as cred
from engine.distribution.credentials import Credentials
from engine.distribution.registry import RegistryClient, RegistryUnauthorized, parse_challenges, sha256_digest
from engine.errors import NotFound, RegistryError
from tests.support import imagebuilder as ib
from tests.support.registry import run_registry
from tests.support.tokenserver import TokenAuth, run_front

PASSWORD = "wonderland"


def upload(client: RegistryClient, repo: str, built: ib.BuiltImage, tag: str, **kw) -> str:
    for digest, data in built.blobs.items():
        if digest != built.manifest_digest:
            client.upload_blob(repo, digest, len(data), lambda data=data: io.BytesIO(data), **kw)
    return client.put_manifest(repo, tag, built.manifest, built.media_type)


@pytest.fixture(scope="module")
def small_image() -> ib.BuiltImage:
    return ib.build_image([[ib.file("/hello", b"hello " * 1000)], [ib.file("/bye", b"bye")]])


# -- transport and challenges -------------------------------------------------------


def test_scheme_follows_docker_rules():
    assert RegistryClient("registry.example.com").base_url == "https://registry.example.com"
    assert RegistryClient("docker.io").base_url == "https://registry-1.docker.io"
    assert RegistryClient("localhost:5000").base_url == "http://localhost:5000"
    assert RegistryClient("127.0.0.1:5000").base_url == "http://127.0.0.1:5000"
    assert RegistryClient("registry.lan:5000", insecure=True).base_url == "https://registry.lan:5000"  # then http


def test_insecure_registry_falls_back_from_https_to_http(open_registry, small_image):
    """Marked insecure, a registry is tried with unverified https first, then plain http, as docker does."""
    upload(RegistryClient(open_registry.host), "reg/insecure", small_image, "v1")
    client = RegistryClient(open_registry.host, insecure=True)
    assert client.base_url.startswith("https://")
    assert client.get_manifest("reg/insecure", "v1")[2] == small_image.manifest_digest
    assert client.base_url == f"http://{open_registry.host}"
    with pytest.raises(RegistryError, match="TLS error"):
        RegistryClient(open_registry.host, insecure=False).get_manifest("reg/insecure", "v1")


def test_parse_challenges_reads_bearer_and_basic_params():
    header = ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
              'scope="repository:samalba/my-app:pull,push", Basic realm="x y"')
    bearer, basic = parse_challenges(header)
    assert bearer.scheme == "bearer"
    assert bearer.params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                             "scope": "repository:samalba/my-app:pull,push"}
    assert basic.scheme == "basic" and basic.params == {"realm": "x y"}


# -- the open registry ---------------------------------------------------------------------


def test_chunked_and_monolithic_uploads_then_read_back(open_registry, small_image):
    client = RegistryClient(open_registry.host)
    # Force PATCH chunks (of 100 bytes) for every blob bigger than 200 bytes.
    digest = upload(client, "reg/chunks", small_image, "v1", monolithic_limit=200, chunk_size=100)
    assert digest == small_image.manifest_digest
    data, media_type, got = client.get_manifest("reg/chunks", "v1")
    assert (data, media_type, got) == (small_image.manifest, small_image.media_type, digest)
    for layer in small_image.layers:
        assert client.get_blob("reg/chunks", layer.digest) == layer.blob
        assert client.blob_size("reg/chunks", layer.digest) == layer.size


def test_relative_upload_locations(open_registry, small_image):
    with run_front(open_registry.host) as front:
        front.relative_locations = True
        client = RegistryClient(front.host)
        assert upload(client, "reg/relative", small_image, "v1", monolithic_limit=200, chunk_size=100)
        patches = front.requests("PATCH", "/v2/reg/relative/blobs/uploads/")
        assert len(patches) > 2 and all(e.status == 202 for e in patches)
    assert RegistryClient(open_registry.host).get_manifest("reg/relative", "v1")[2] == small_image.manifest_digest


def test_cross_repository_mount(open_registry, small_image):
    client = RegistryClient(open_registry.host)
    upload(client, "reg/source", small_image, "v1")
    layer = small_image.layers[0]
    assert client.blob_size("reg/target", layer.digest) is None
    assert client.mount_blob("reg/target", layer.digest, "reg/source") is None  # 201: mounted
    assert client.blob_size("reg/target", layer.digest) == layer.size
    # A blob the source does not have: 202 and an upload location to use instead.
    location = client.mount_blob("reg/target", sha256_digest(b"nowhere"), "reg/source")
    assert location and location.startswith(f"http://{open_registry.host}/v2/reg/target/blobs/uploads/")


def test_catalog_and_tags_follow_pagination(open_registry, small_image):
    client = RegistryClient(open_registry.host)
    for name in ("page/a", "page/b", "page/c", "page/d", "page/e"):
        upload(client, name, small_image, "v1")
    for tag in ("t1", "t2", "t3", "t4", "t5"):
        client.put_manifest("page/a", tag, small_image.manifest, small_image.media_type)
    with run_front(open_registry.host) as front:
        names = list(RegistryClient(front.host).catalog(page_size=2))
        assert [n for n in names if n.startswith("page/")] == ["page/a", "page/b", "page/c", "page/d", "page/e"]
        assert len(front.requests("GET", "/v2/_catalog")) >= -(-len(names) // 2)  # a page per two names
        front.paginate_tags = True
        tags = list(RegistryClient(front.host).tags("page/a", page_size=2))
        assert tags == ["t1", "t2", "t3", "t4", "t5", "v1"]
        assert len(front.requests("GET", "/tags/list")) == 3


def test_registry_errors_are_clear(open_registry):
    client = RegistryClient(open_registry.host)
    with pytest.raises(NotFound, match=rf"manifest unknown: .*{open_registry.host}/reg/none"):
        client.get_manifest("reg/none", "v1")
    with pytest.raises(RegistryError, match=rf"name unknown: repository reg/none not found on {open_registry.host}"):
        list(client.tags("reg/none"))
    with pytest.raises(RegistryError, match="blob unknown"):
        client.get_blob("reg/none", sha256_digest(b"x"))


def test_denied_and_rate_limited_are_explained(open_registry, small_image):
    with run_front(open_registry.host) as front:
        front.fail["/v2/reg/denied/"] = (403, "DENIED")
        front.fail["/v2/reg/limited/"] = (429, "TOOMANYREQUESTS")
        client = RegistryClient(front.host)
        with pytest.raises(RegistryUnauthorized, match=rf"denied: requested access to .*{front.host}/reg/denied"):
            client.get_manifest("reg/denied", "v1")
        with pytest.raises(RegistryError, match=rf"toomanyrequests: {front.host} says too many requests"):
            client.get_manifest("reg/limited", "v1")


def test_delete_disabled_is_explained(small_image):
    with run_registry(delete=False) as registry:
        client = RegistryClient(registry.host)
        digest = upload(client, "reg/keep", small_image, "v1")
        with pytest.raises(RegistryError, match="deletes are disabled"):
            client.delete_manifest("reg/keep", digest)


def test_redirected_blobs_are_fetched_without_our_credentials(auth_registry, open_registry, small_image):
    """Blob GETs may be redirected to storage; credentials must not follow to another host."""
    client = RegistryClient(open_registry.host)
    upload(client, "reg/redirect", small_image, "v1")
    auth = TokenAuth(users={"alice": PASSWORD})
    with run_front(open_registry.host) as storage, run_front(open_registry.host, auth) as front:
        front.redirect_blobs_to = storage.host
        client = RegistryClient(front.host, Credentials("alice", PASSWORD))
        layer = small_image.layers[0]
        assert client.get_blob("reg/redirect", layer.digest) == layer.blob
        assert [e.status for e in front.requests("GET", layer.digest)] == [307]
        served = storage.requests("GET", layer.digest)
        assert [(e.status, e.authorization) for e in served] == [(200, "")]


# -- Basic auth (htpasswd registry) -----------------------------------------------------


def test_basic_auth_login_and_push(auth_registry, small_image):
    client = RegistryClient(auth_registry.host, Credentials("alice", PASSWORD))
    client.login()
    assert upload(client, "basic/app", small_image, "v1") == small_image.manifest_digest


def test_basic_auth_rejects_wrong_and_missing_credentials(auth_registry):
    with pytest.raises(RegistryUnauthorized, match="incorrect username or password") as wrong:
        RegistryClient(auth_registry.host, Credentials("alice", "not-the-password")).login()
    assert "not-the-password" not in str(wrong.value)
    with pytest.raises(RegistryUnauthorized, match=rf"authentication required for .*{auth_registry.host}/basic/x"):
        RegistryClient(auth_registry.host).get_manifest("basic/x", "v1")


# -- Bearer tokens (token server) -----------------------------------------------------


def test_bearer_flow_checks_service_scope_and_caches_tokens(open_registry, small_image):
    auth = TokenAuth(service="registry.docker.io", users={"bob": "builder"})
    with run_front(open_registry.host, auth) as front:
        client = RegistryClient(front.host, Credentials("bob", "builder"))
        upload(client, "bearer/app", small_image, "v1")
        assert front.token_request_count() == 1  # one token for repository:bearer/app:pull,push
        first = auth.token_requests[0]
        assert first == {"service": "registry.docker.io", "scope": ["repository:bearer/app:pull,push"],
                         "account": "bob", "user": "bob"}
        client.get_manifest("bearer/app", "v1")
        client.get_blob("bearer/app", small_image.layers[0].digest)
        assert front.token_request_count() == 2  # one more, for the pull scope, reused
        client.blob_size("bearer/other", small_image.layers[0].digest)
        assert auth.token_requests[-1]["scope"] == ["repository:bearer/other:pull"]
        assert front.token_request_count() == 3
        # Every registry request carried a bearer token, none carried Basic credentials.
        assert {e.authorization for e in front.log if e.path.startswith("/v2/") and e.path != "/v2/"} == {"Bearer"}


def test_bearer_tokens_are_renewed_when_they_expire(open_registry, small_image):
    auth = TokenAuth(users={"bob": "builder"}, expires_in=1)
    with run_front(open_registry.host, auth) as front:
        client = RegistryClient(front.host, Credentials("bob", "builder"))
        upload(client, "bearer/expiry", small_image, "v1")
        before = front.token_request_count()
        time.sleep(1.1)
        client.get_manifest("bearer/expiry", "v1")
        client.get_manifest("bearer/expiry", "v1")
        assert front.token_request_count() == before + 1


def test_bearer_anonymous_pull_of_public_repository_but_not_push(open_registry, small_image):
    upload(RegistryClient(open_registry.host), "library/public", small_image, "v1")
    auth = TokenAuth(public={"library/public"})
    with run_front(open_registry.host, auth) as front:
        client = RegistryClient(front.host)
        assert client.get_manifest("library/public", "v1")[2] == small_image.manifest_digest
        assert auth.token_requests[-1]["account"] is None and auth.token_requests[-1]["user"] is None
        with pytest.raises(RegistryUnauthorized, match=rf"{front.host}/library/private"):
            client.get_manifest("library/private", "v1")
        with pytest.raises(RegistryUnauthorized, match="unauthorized"):
            client.start_upload("library/public")


def test_bearer_wrong_password_is_unauthorized_without_leaking_it(open_registry):
    auth = TokenAuth(users={"bob": "builder"})
    with run_front(open_registry.host, auth) as front:
        with pytest.raises(RegistryUnauthorized, match=f"incorrect username or password for {front.host}") as err:
            RegistryClient(front.host, Credentials("bob", "s3cr3t-guess")).login()
        assert "s3cr3t-guess" not in str(err.value)
        RegistryClient(front.host, Credentials("bob", "builder")).login()
        assert auth.token_requests[-1]["scope"] == []  # login asks for a token without scope


def test_identity_token_uses_the_refresh_grant(open_registry, small_image):
    """An ``identitytoken`` from config.json is exchanged by POST (grant_type=refresh_token), as docker does."""
    auth = TokenAuth(users={"bob": "builder"}, refresh_tokens={"refresh-123": "bob"})
    with run_front(open_registry.host, auth) as front:
        client = RegistryClient(front.host, Credentials("bob", identity_token="refresh-123"))
        upload(client, "bearer/identity", small_image, "v1")
        assert auth.token_requests[-1]["grant"] == "refresh_token" and auth.token_requests[-1]["user"] == "bob"
        with pytest.raises(RegistryUnauthorized, match="incorrect username or password"):
            RegistryClient(front.host, Credentials("bob", identity_token="stale")).login()


# -- credentials in config.json ---------------------------------------------------------


def test_credentials_file_roundtrip(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"}},
                                "credsStore": "none", "psFormat": "x"}))
    assert cred.lookup("docker.io", path) == Credentials("user", "pass")
    assert cred.lookup("registry-1.docker.io", path) == Credentials("user", "pass")
    assert cred.lookup("127.0.0.1:5000", path) is None
    cred.store("http://127.0.0.1:5000/v2/", Credentials("alice", "p:w"), path)
    assert cred.lookup("127.0.0.1:5000", path) == Credentials("alice", "p:w")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["psFormat"] == "x" and "127.0.0.1:5000" in data["auths"]
    assert cred.remove("docker.io", path) is True
    assert cred.remove("docker.io", path) is False
    assert cred.lookup("docker.io", path) is None
    assert "p:w" not in repr(Credentials("alice", "p:w"))


def test_credential_helper_is_asked_first(tmp_path, monkeypatch):
    helper = tmp_path / "bin" / "docker-credential-fake"
    helper.parent.mkdir()
    helper.write_text('#!/bin/sh\nread server\n[ "$server" = "helped.example:5000" ] || exit 1\n'
                      'echo \'{"ServerURL":"helped.example:5000","Username":"hal","Secret":"s3"}\'\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:/usr/bin:/bin")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"credHelpers": {"helped.example:5000": "fake"},
                                "auths": {"other.example": {"auth": "dXNlcjpwYXNz"}}}))
    assert cred.lookup("helped.example:5000", path) == Credentials("hal", "s3")
    assert cred.lookup("other.example", path) == Credentials("user", "pass")


def test_config_path_follows_docker_config(tmp_path):
    assert cred.config_path({"DOCKER_CONFIG": str(tmp_path)}) == tmp_path / "config.json"
    assert cred.config_path({"HOME": "/home/u"}).as_posix() == "/home/u/.docker/config.json"


def test_login_stores_only_verified_credentials(auth_registry, tmp_path):
    path = tmp_path / "docker" / "config.json"
    with pytest.raises(RegistryUnauthorized):
        cred.login(auth_registry.host, Credentials("alice", "wrong"), path=path)
    assert not path.exists()
    cred.login(auth_registry.host, Credentials("alice", PASSWORD), path=path)
    assert cred.lookup(auth_registry.host, path) == Credentials("alice", PASSWORD)
