"""What bench/logs.py and bench/terminal.py share: a throwaway console (data dir, engine
root, a signed-in administrator's session) and a real daphne serving it over TCP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Console:
    def __init__(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="berth-bench-live-", dir="/tmp"))
        self.env = {**os.environ, "BERTH_DATA_DIR": str(self.tmp / "data"),
                    "BERTH_ENGINE_ROOT": str(self.tmp / "engine"), "BERTH_ENGINE_RUN": str(self.tmp / "run"),
                    "BERTH_IN_MEMORY_CHANNELS": "1", "BERTH_ALLOWED_HOSTS": "127.0.0.1,localhost",
                    "DJANGO_SETTINGS_MODULE": "console.settings", "BERTH_LOG_LEVEL": "WARNING"}
        os.environ.update(self.env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.test import Client

        user = get_user_model().objects.create_superuser("bench", "", "bench-password-1")
        client = Client(HTTP_HOST="127.0.0.1")  # an allowed host (BERTH_ALLOWED_HOSTS above)
        client.force_login(user)
        self.client = client
        self.cookie = f"sessionid={client.cookies['sessionid'].value}"
        from engine.config import EngineConfig
        from engine.containers.manager import Containers
        from engine.images.store import ImageStore
        from tests.support.imagebuilder import busybox_image

        self.config = EngineConfig(root=Path(settings.ENGINE_ROOT), run_root=Path(settings.ENGINE_RUN_ROOT))
        busybox_image(ImageStore(self.config), ref="bench/busybox:latest")
        self.containers = Containers(self.config)
        self.daphne = None
        self.port = free_port()

    def mirror(self, container_id: str) -> int:
        from console.core.models import Environment
        from console.inventory.models import Container
        from console.inventory.reconcile import reconcile

        environment = Environment.objects.get(name="local")
        reconcile(environment, "containers")
        return Container.objects.get(environment=environment, container_id=container_id).pk

    def terminal_token(self, pk: int) -> str:
        """The page token a terminal socket needs (console.core.sockettokens)."""
        response = self.client.get(f"/live/containers/{pk}/terminal/token/")
        assert response.status_code == 200, (response.status_code, response.content[:300])
        return response.json()["token"]

    def start_daphne(self) -> None:
        self.log = open(self.tmp / "daphne.log", "w")
        self.daphne = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
                                        "console.asgi:application"], cwd=ROOT, env=self.env,
                                       stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError((self.tmp / "daphne.log").read_text())

    def close(self) -> None:
        import shutil

        for summary in self.containers.list(all=True):
            try:
                self.containers.remove(summary["Id"], force=True)
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass
        from engine.supervisor.servers import stop_servers

        stop_servers(self.config.run_root)
        if self.daphne is not None:
            self.daphne.terminate()
            try:
                self.daphne.wait(10)
            except subprocess.TimeoutExpired:
                self.daphne.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)
