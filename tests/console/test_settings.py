"""Settings come from the environment with safe defaults."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = (
    "import json; from django.conf import settings as s; "
    "print(json.dumps({'debug': s.DEBUG, 'key': s.SECRET_KEY, 'db': s.DATABASES['default']['ENGINE'], "
    "'db_name': str(s.DATABASES['default']['NAME']), 'hosts': s.ALLOWED_HOSTS, "
    "'origins': s.CSRF_TRUSTED_ORIGINS, 'redis': s.REDIS_URL, "
    "'layer': s.CHANNEL_LAYERS['default']['BACKEND']}))"
)


def load_settings(tmp_path, **env):
    base = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "console.settings",
            "BERTH_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**base, **env},
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_defaults_are_safe(tmp_path):
    s = load_settings(tmp_path)
    assert s["debug"] is False
    assert s["db"] == "django.db.backends.sqlite3"
    assert s["db_name"] == str(tmp_path / "berth.sqlite3")
    assert s["hosts"] == ["localhost", "127.0.0.1", "[::1]"]
    assert s["layer"] == "channels_redis.core.RedisChannelLayer"


def test_secret_key_is_generated_once_kept_private_and_reused(tmp_path):
    first = load_settings(tmp_path)["key"]
    key_file = tmp_path / "secret_key"
    assert key_file.read_text() == first and len(first) >= 50
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert load_settings(tmp_path)["key"] == first
    assert load_settings(tmp_path, BERTH_SECRET_KEY="given")["key"] == "given"


def test_database_redis_hosts_and_origins_come_from_the_environment(tmp_path):
    s = load_settings(
        tmp_path,
        BERTH_DATABASE_URL="postgres://berth:pw@db.internal:5432/berth",
        BERTH_REDIS_URL="redis://cache.internal:6380/2",
        BERTH_ALLOWED_HOSTS="berth.example.com, 10.0.0.5",
        BERTH_CSRF_TRUSTED_ORIGINS="https://berth.example.com",
        BERTH_DEBUG="yes",
    )
    assert s["db"] == "django.db.backends.postgresql"
    assert s["redis"] == "redis://cache.internal:6380/2"
    assert s["hosts"] == ["berth.example.com", "10.0.0.5"]
    assert s["origins"] == ["https://berth.example.com"]
    assert s["debug"] is True


def test_psycopg3_is_the_postgresql_driver():
    import psycopg

    assert psycopg.__version__.startswith("3.")
