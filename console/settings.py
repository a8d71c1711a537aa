"""Settings, read from the environment with safe defaults.

Every knob is a ``BERTH_*`` variable; see the README's configuration table.
Nothing here needs editing to deploy.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DATA_DIR = Path(os.environ.get("BERTH_DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)


def make_private(path: Path, mode: int) -> None:
    """Owner-only: the data dir holds the database (every session, the audit log) and the keys.
    Best effort on a path this process does not own. (No process-wide umask: the worker runs
    the embedded engine in-process, and the files it makes for containers keep their modes.)"""
    try:
        os.chmod(path, mode)
    except OSError:
        pass


make_private(DATA_DIR, 0o700)  # also an existing one, made before this rule


def load_or_create_key(env_var: str, filename: str, make) -> str:
    """A key given in the environment wins; otherwise one is made once and kept (mode 0600)."""
    given = os.environ.get(env_var)
    if given:
        return given
    key_file = DATA_DIR / filename
    if key_file.exists():
        return key_file.read_text().strip()
    tmp = key_file.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(make())
    try:
        # link() fails if another process made the key first: then use theirs.
        os.link(tmp, key_file)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return key_file.read_text().strip()


SECRET_KEY = load_or_create_key("BERTH_SECRET_KEY", "secret_key", lambda: secrets.token_urlsafe(50))
# Encrypts registry credentials at rest (Fernet). Kept apart from SECRET_KEY so that
# rotating one does not lose the other; back it up with the database.
ENCRYPTION_KEY = load_or_create_key(
    "BERTH_ENCRYPTION_KEY", "encryption_key",
    lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
)
DEBUG = env_bool("BERTH_DEBUG", False)
ALLOWED_HOSTS = env_list("BERTH_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("BERTH_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "console.core",
    "console.operations",
    "console.inventory",
    "console.registries",
    "console.images",
    "console.containers",
    "console.volumes",
    "console.networks",
    "console.accounts",
    "console.access",
    "console.audit",
    "console.live",
    "console.sitesettings",
    "console.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "console.audit.context.RequestContextMiddleware",  # request id, source IP for the audit log
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "console.access.cache.AccessCacheMiddleware",  # the user's roles read once a request
    "console.core.csp.SecurityHeadersMiddleware",  # Content-Security-Policy; no-store when signed in
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
]

ROOT_URLCONF = "console.urls"
ASGI_APPLICATION = "console.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.web.context_processors.navigation",
                "console.accounts.context_processors.sign_in_attacks",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("BERTH_DATABASE_URL", f"sqlite:///{DATA_DIR / 'berth.sqlite3'}"),
        conn_max_age=60,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while a worker writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Tests share the database with a worker thread: a file (not shared memory, whose
    # table locks fail at once) lets SQLite's busy timeout make writers wait instead.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
    _db = Path(DATABASES["default"]["NAME"])
    if _db.name != ":memory:" and _db.parent.is_dir():
        # SQLite gives its WAL, shared-memory index and journal the database file's mode:
        # create the file 0600 before SQLite does, and fix files made before this rule.
        if not _db.exists():
            os.close(os.open(_db, os.O_WRONLY | os.O_CREAT, 0o600))
        for _path in (_db, *(_db.with_name(_db.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
            if _path.exists():
                make_private(_path, 0o600)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("BERTH_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Serve straight from the finders when collectstatic has not run (development, tests).
WHITENOISE_USE_FINDERS = not (STATIC_ROOT / "staticfiles.json").exists()
if WHITENOISE_USE_FINDERS:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

# Sessions and cookies: HttpOnly everywhere, Secure when served over HTTPS.
SESSION_COOKIE_AGE = int(os.environ.get("BERTH_SESSION_SECONDS", 8 * 3600))
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_COOKIES = env_bool("BERTH_SECURE_COOKIES", False)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Sign-in protection (console/accounts/signin.py): failed sign-ins before a lockout with back-off,
# per name and per client address; 0 turns one off (behind a proxy every client has its address).
SIGNIN_USER_THRESHOLD = int(os.environ.get("BERTH_SIGNIN_USER_THRESHOLD", 5))
SIGNIN_IP_THRESHOLD = int(os.environ.get("BERTH_SIGNIN_IP_THRESHOLD", 20))
# The name alone, from every address together: much higher, so nobody locks an administrator out.
SIGNIN_NAME_THRESHOLD = int(os.environ.get("BERTH_SIGNIN_NAME_THRESHOLD", 100))
# Registry hosts pulls, pushes and builds may reach besides Docker Hub and the configured registries'
# public hosts (console/registries/reach.py): host, host:port, *.example.com, * (any public host).
REGISTRY_ALLOWLIST = env_list("BERTH_REGISTRY_ALLOWLIST")
if env_bool("BERTH_BEHIND_HTTPS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

REDIS_URL = os.environ.get("BERTH_REDIS_URL", "redis://127.0.0.1:6379/0")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    }
}
if env_bool("BERTH_IN_MEMORY_CHANNELS", False):
    # Only for unit tests that run without Redis.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TRACK_STARTED = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "refresh-engine-facts": {
        "task": "console.inventory.refresh_engine_facts",
        "schedule": 300.0,
    },
    "reconcile-inventory": {
        "task": "console.inventory.reconcile_all",
        "schedule": 60.0,
    },
    "clean-image-transfers": {
        "task": "console.images.clean_transfers",
        "schedule": 3600.0,
    },
}

# The audit log (console/audit). Retention archives then purges records older than this
# many days (0 keeps everything); archives go to BERTH_AUDIT_ARCHIVE_DIR.
BERTH_AUDIT_RETENTION_DAYS = int(os.environ.get("BERTH_AUDIT_RETENTION_DAYS", 365))
BERTH_AUDIT_ARCHIVE_DIR = Path(os.environ.get("BERTH_AUDIT_ARCHIVE_DIR", DATA_DIR / "audit-archive"))
BERTH_AUDIT_VERIFY_SECONDS = float(os.environ.get("BERTH_AUDIT_VERIFY_SECONDS", 3600))
BERTH_AUDIT_RECORD_TERMINALS = env_bool("BERTH_AUDIT_RECORD_TERMINALS", True)
BERTH_AUDIT_RECORD_TERMINAL_INPUT = env_bool("BERTH_AUDIT_RECORD_TERMINAL_INPUT", False)
BERTH_AUDIT_RECORDING_MAX_BYTES = int(os.environ.get("BERTH_AUDIT_RECORDING_MAX_BYTES", 16 * 1024 * 1024))
# Proxies (addresses or networks) whose X-Forwarded-For is believed for the source IP.
BERTH_TRUSTED_PROXIES = env_list("BERTH_TRUSTED_PROXIES")
CELERY_BEAT_SCHEDULE["audit-verify"] = {"task": "console.audit.verify", "schedule": BERTH_AUDIT_VERIFY_SECONDS}
CELERY_BEAT_SCHEDULE["audit-retention"] = {"task": "console.audit.retention", "schedule": 24 * 3600.0}

# Operations: a running one stamps its heartbeat this often; one not stamped for STALE
# seconds has lost its worker and is reaped (marked failed, its leftovers cleaned) at every
# worker's start and every REAP seconds. Partial downloads younger than the grace are kept;
# older ones go at the reaping and at the engine's clean-up every GC seconds.
BERTH_OPERATION_HEARTBEAT_SECONDS = float(os.environ.get("BERTH_OPERATION_HEARTBEAT_SECONDS", 10))
BERTH_OPERATION_STALE_SECONDS = float(os.environ.get("BERTH_OPERATION_STALE_SECONDS", 60))
BERTH_INGEST_GRACE_SECONDS = float(os.environ.get("BERTH_INGEST_GRACE_SECONDS", 600))
CELERY_BEAT_SCHEDULE["reap-operations"] = {
    "task": "console.operations.reap",
    "schedule": float(os.environ.get("BERTH_OPERATION_REAP_SECONDS", 60)),
}
CELERY_BEAT_SCHEDULE["engine-clean-leftovers"] = {
    "task": "console.operations.clean_leftovers",
    "schedule": float(os.environ.get("BERTH_ENGINE_GC_SECONDS", 900)),
}

# The embedded engine on this host.
ENGINE_ROOT = os.environ.get("BERTH_ENGINE_ROOT", "/var/lib/berth")
ENGINE_RUN_ROOT = os.environ.get("BERTH_ENGINE_RUN", "/run/berth")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("BERTH_LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
