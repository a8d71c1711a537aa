"""docker-compose.yml can't run here (no Docker engine); check it agrees with the launcher."""

from pathlib import Path

import yaml

from console import processes

ROOT = Path(__file__).resolve().parents[2]


def load_compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_are_redis_web_worker_and_beat():
    services = load_compose()["services"]
    assert {"redis", "web", "worker", "beat", "events"} <= set(services)


def test_services_start_the_same_entry_points_as_the_launcher():
    services = load_compose()["services"]
    assert services["web"]["command"] == processes.web("0.0.0.0", 8000)
    assert services["worker"]["command"] == processes.worker()
    assert services["beat"]["command"] == processes.beat()
    assert services["events"]["command"] == processes.follower()
    prepare = " && ".join(" ".join(step) for step in processes.PREPARE)
    assert services["migrate"]["command"] == ["sh", "-c", prepare]


def test_berth_services_share_one_configuration_and_the_data_volume():
    services = load_compose()["services"]
    berth = [services[name] for name in ("web", "worker", "beat", "events", "migrate")]
    environments = [s["environment"] for s in berth]
    assert all(env == environments[0] for env in environments)
    assert environments[0]["BERTH_REDIS_URL"] == "redis://redis:6379/0"
    assert all("berth-data:/data" in s["volumes"] for s in berth)
    assert "berth-data" in load_compose()["volumes"]


def test_the_dockerfile_serves_the_web_entry_point():
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = processes.web("0.0.0.0", 8000)
    assert "CMD " + str(cmd).replace("'", '"') in dockerfile
