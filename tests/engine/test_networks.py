"""Networks and published ports on real runc, bridges, veths and iptables.

Traffic goes only to 127.0.0.1 and to containers' own addresses in namespaces the engine
made; every test checks that nothing is left on the host (bridge, veth, namespace, rule).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from engine.errors import Conflict, InvalidArgument, NotFound
from engine.net.networks import Networks
from tests.support.containers import cleanup, make_engine, wait_for
from tests.support.networks import host_state, recording_ids, remove_all

HTTPD = ["sh", "-c", "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"]


@pytest.fixture
def engine():
    """The engine of one test; what it leaves on the host is checked by name (its own ids),
    so that another engine beside the suite (a console, another test) changes nothing."""
    with recording_ids():
        eng, _ = make_engine()
        config = eng.config
        try:
            yield eng
        finally:
            try:
                remove_all(eng)
            finally:
                cleanup(eng)
        assert host_state(config) == {"links": set(), "netns": set(), "rules": set()}


def fetch(port: int, timeout: float = 5.0) -> str:
    def get():
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read().decode()
        except OSError:
            return None
    return wait_for(get, timeout)


def output(eng, ref) -> str:
    return "".join(r["log"] for r in eng.logs(ref))


def port_free(port: int) -> bool:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # our fetch left TIME_WAITs
    try:
        s.bind(("0.0.0.0", port))
        s.listen(1)
        return True
    except OSError:
        return False
    finally:
        s.close()


def test_published_port_reaches_httpd_and_is_released_on_stop(engine):
    nets = Networks(engine.config)
    c, _ = engine.run("test/busybox", HTTPD, publish=["8080"], name="web")
    port = nets.host_port(c.id, 8080)
    assert port and "hello from" in fetch(port)
    settings = engine.inspect("web")["NetworkSettings"]
    assert settings["Ports"]["8080/tcp"][0]["HostPort"] == str(port)
    assert settings["Networks"]["bridge"]["IPAddress"].startswith("10.")
    netns = nets.endpoint(c.id)["Netns"]
    assert netns in host_state(engine.config)["netns"]
    engine.stop("web", timeout=1)
    assert port_free(port)
    assert netns not in host_state(engine.config)["netns"]
    assert nets.host_port(c.id, 8080) is None
    # started again, it gets its network back (same address)
    engine.start("web")
    port = nets.host_port(c.id, 8080)
    assert "hello from" in fetch(port)


def test_a_large_download_through_the_relay_is_whole(engine):
    c, _ = engine.run("test/busybox", ["sh", "-c", "mkdir /www && dd if=/dev/urandom of=/www/big bs=1M count=8 "
                                       "2>/dev/null && md5sum /www/big && exec httpd -f -p 80 -h /www"],
                      publish=["80"])
    port = Networks(engine.config).host_port(c.id, 80)
    wait_for(lambda: "/www/big" in output(engine, c.id))
    data = urllib.request.urlopen(f"http://127.0.0.1:{port}/big", timeout=10).read()
    assert len(data) == 8 << 20
    assert hashlib.md5(data).hexdigest() == output(engine, c.id).split()[0]


def test_fixed_host_port_on_loopback(engine):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    host_port = probe.getsockname()[1]
    probe.close()
    engine.run("test/busybox", HTTPD, publish=[f"127.0.0.1:{host_port}:8080"], name="web")
    assert "hello from" in fetch(host_port)


def test_keeper_relays_tcp_and_udp_and_exits_with_the_monitor():
    """The relay itself, against echo servers on 127.0.0.1 (busybox has no UDP server)."""
    from engine.net.networks import spawn_keeper
    from engine.net.ports import PortSpec, bind
    from tests.support.containers import new_config

    config = new_config()
    udp_echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp_echo.bind(("127.0.0.1", 0))
    tcp_echo = socket.socket()
    tcp_echo.bind(("127.0.0.1", 0))
    tcp_echo.listen(4)

    def serve():
        while True:
            try:
                data, addr = udp_echo.recvfrom(100)
            except OSError:
                return
            udp_echo.sendto(b"echo " + data, addr)

    def serve_tcp():
        while True:
            try:
                conn, _ = tcp_echo.accept()
            except OSError:
                return
            conn.sendall(b"echo " + conn.recv(100))
            conn.close()

    import threading

    threading.Thread(target=serve, daemon=True).start()
    threading.Thread(target=serve_tcp, daemon=True).start()
    watched = subprocess.Popen(["sleep", "30"])
    from engine.base.proc import process_start_time

    socks = [bind(PortSpec("127.0.0.1", 0, 1, "udp")), bind(PortSpec("127.0.0.1", 0, 1, "tcp"))]
    ports = [{"host_ip": "127.0.0.1", "host_port": s.getsockname()[1], "proto": p,
              "container_port": echo.getsockname()[1], "target_ip": "127.0.0.1"}
             for s, p, echo in zip(socks, ("udp", "tcp"), (udp_echo, tcp_echo), strict=True)]
    plan = {"root": str(config.root), "run_root": str(config.run_root), "container": "0" * 64,
            "monitor": [watched.pid, process_start_time(watched.pid)], "ports": ports}
    keeper = spawn_keeper(plan, [s.fileno() for s in socks])
    for s in socks:
        s.close()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(0.3)
    try:
        def echoed():
            client.sendto(b"ping", ("127.0.0.1", ports[0]["host_port"]))
            try:
                return client.recv(100)
            except OSError:
                return None
        assert wait_for(echoed, 10) == b"echo ping"
        with socket.create_connection(("127.0.0.1", ports[1]["host_port"]), timeout=5) as conn:
            conn.sendall(b"hi")
            assert conn.recv(100) == b"echo hi"
        watched.kill()
        watched.wait()
        wait_for(lambda: process_start_time(keeper) is None, 10)
        assert port_free(ports[1]["host_port"])
    finally:
        client.close()
        udp_echo.close()
        tcp_echo.close()
        if process_start_time(keeper) is not None:
            os.kill(keeper, 9)
        shutil.rmtree(config.root.parent, ignore_errors=True)


def test_names_resolve_on_a_user_network_and_networks_are_isolated(engine):
    nets = Networks(engine.config)
    nets.create("front")
    nets.create("back")
    engine.run("test/busybox", HTTPD, network="front", name="web")
    web_ip = engine.inspect("web")["NetworkSettings"]["IPAddress"]
    # (busybox's static wget crashes resolving names: nc it is)
    get = "for i in 1 2 3 4 5 6 7 8 9 10; do echo GET / HTTP/1.0 | nc -w 2 {} 8080 && exit 0; sleep 0.2; done; exit 1"
    _, code = engine.run("test/busybox", ["sh", "-c", get.format("web")], network="front", detach=False,
                         name="client")
    assert code == 0 and "hello from" in output(engine, "client")
    # another network neither knows the name nor reaches the address
    _, code = engine.run("test/busybox", ["sh", "-c", "grep -w web /etc/hosts"], network="back", detach=False)
    assert code == 1
    c, code = engine.run("test/busybox", ["sh", "-c", f"echo GET / HTTP/1.0 | nc -w 1 {web_ip} 8080"],
                         network="back", detach=False)
    assert "hello from" not in output(engine, c.id)
    # connect a running container: now it sees web by name; disconnect: gone again
    other, _ = engine.run("test/busybox", ["sleep", "60"], network="back", name="other")
    nets.connect("front", other.id)
    hosts = (other.dir / "hosts").read_text()
    assert "\tweb" in hosts
    assert "other" in (engine.get("web").dir / "hosts").read_text()
    info = nets.inspect("front")
    assert other.id in info["Containers"]
    with pytest.raises(Conflict):
        nets.remove("front")
    nets.disconnect("front", other.id)
    assert "\tweb" not in (other.dir / "hosts").read_text()
    assert "other" not in (engine.get("web").dir / "hosts").read_text()


def test_another_engines_bridges_and_namespaces_are_not_this_engines_leftovers(engine):
    """What an engine beside the suite (a developer's console) makes meanwhile, as
    ``ip`` makes it here, is not counted as this engine's."""
    before = host_state(engine.config)
    other = os.urandom(8).hex()  # made in another process: not among this one's ids
    subprocess.run(["ip", "netns", "add", f"berth-{other}"], check=True)
    try:
        subprocess.run(["ip", "link", "add", f"bb-{other[:12]}", "type", "bridge"], check=True)
        assert host_state(engine.config) == before
        assert f"berth-{other}" in host_state()["netns"] and f"bb-{other[:12]}" in host_state()["links"]
    finally:
        subprocess.run(["ip", "link", "del", f"bb-{other[:12]}"], capture_output=True)
        subprocess.run(["ip", "netns", "del", f"berth-{other}"], capture_output=True)


def test_bad_input_leaves_nothing(engine):
    before = host_state(engine.config)
    nets = Networks(engine.config)
    net = nets.create("one", subnet="10.213.240.0/24")
    assert net["IPAM"]["Config"][0]["Subnet"] == "10.213.240.0/24"
    made = host_state(engine.config)
    with pytest.raises(Conflict, match="overlaps"):
        nets.create("two", subnet="10.213.240.128/25")
    with pytest.raises(Conflict, match="already exists"):
        nets.create("one")
    with pytest.raises(InvalidArgument):
        nets.create("bad/name")
    with pytest.raises(InvalidArgument):
        nets.create("three", subnet="10.213.241.0/33")
    assert host_state(engine.config) == made
    with pytest.raises(NotFound):
        engine.create("test/busybox", ["true"], network="nowhere")
    for bad in ("70000", "80:tcp", "1.2.3:80:80", "a:80", "80-90"):
        with pytest.raises(InvalidArgument):
            engine.create("test/busybox", ["true"], publish=[bad])
    with pytest.raises(InvalidArgument):
        engine.create("test/busybox", ["true"], network="none", publish=["80"])
    # a port already taken: the start fails, nothing of the network is left
    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))
    taken.listen(1)
    try:
        c = engine.create("test/busybox", HTTPD, network="one", publish=[f"{taken.getsockname()[1]}:8080"])
        with pytest.raises(Conflict, match="already allocated"):
            engine.start(c.id)
        assert host_state(engine.config) == made
        engine.remove(c.id)
    finally:
        taken.close()
    assert engine.ids() == []
    nets.remove("one")
    assert host_state(engine.config) == before
    assert [n["Name"] for n in nets.list()] in (["none", "host"], ["none", "host", "bridge"])
    nets.get("bridge")
    with pytest.raises(Conflict, match="pre-defined"):
        nets.remove("bridge")


def test_prune_and_keeper_cleanup_when_container_exits(engine):
    nets = Networks(engine.config)
    nets.create("temp")
    nets.create("kept")
    c, _ = engine.run("test/busybox", ["sleep", "60"], network="kept")
    removed = nets.prune()
    assert "temp" in removed and "kept" not in removed
    # the container ends by itself: its keeper releases namespace and veth
    netns = nets.endpoint(c.id)["Netns"]
    subprocess.run(engine.runtime.base() + ["kill", c.id, "KILL"], check=True)
    wait_for(lambda: netns not in host_state(engine.config)["netns"], 10)
    wait_for(lambda: not nets.endpoint(c.id)["Keeper"], 10)
    time.sleep(0.05)


def test_bridges_work_under_dockerds_forward_drop_policy(engine):
    """dockerd sets the FORWARD policy to DROP; our chain accepts traffic within a bridge."""
    policy = "ACCEPT" if "-P FORWARD ACCEPT" in subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True,
                                                                 text=True).stdout else "DROP"
    nets = Networks(engine.config)
    nets.create("dropnet")
    subprocess.run(["iptables", "-P", "FORWARD", "DROP"], check=True)
    try:
        engine.run("test/busybox", HTTPD, network="dropnet", name="web")
        get = "for i in 1 2 3 4 5 6 7 8 9 10; do echo GET / HTTP/1.0 | nc -w 2 web 8080 && exit 0; sleep 0.2; done"
        c, code = engine.run("test/busybox", ["sh", "-c", get + "; exit 1"], network="dropnet", detach=False)
        assert code == 0 and "hello from" in output(engine, c.id)
    finally:
        subprocess.run(["iptables", "-P", "FORWARD", policy], check=True)
