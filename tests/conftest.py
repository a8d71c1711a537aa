from pathlib import Path

import pytest

from tests.support.services import prepare_engine

pytest_plugins = ["tests.support.browser", "tests.support.registry", "tests.support.worker"]

# The `root` tier: what needs root (mounts, runc, namespaces, iptables, dockerd, the engine
# with containers). Marked here, so that `pytest -m "not root"` is the fast tier that runs
# as any user. A test needs root when
# - it is in one of these folders, but for the modules listed after them (pure parsing,
#   image stores, registries), where a test that needs root says so with @pytest.mark.root;
ROOT_FOLDERS = ("engine", "faults")
UNPRIVILEGED_MODULES = {
    "engine/test_archive.py", "engine/test_boot.py", "engine/test_cli.py", "engine/test_content.py",
    "engine/test_images.py", "engine/test_inroot.py", "engine/test_layers_hostile.py",
    "engine/test_pull_push.py", "engine/test_reference.py", "engine/test_registry.py",
    "engine/test_tarsafe.py", "engine/test_volumes_hostile.py",
}
# - or it uses (directly or through another fixture) one of these fixtures: the console's
#   engine, a worker that drives it, a console started for the browser, a docker daemon.
ROOT_FIXTURES = {"console_engine", "celery_worker", "live_console", "dockerd"}
TESTS = Path(__file__).resolve().parent


def needs_root(item) -> bool:
    if item.get_closest_marker("root") or ROOT_FIXTURES.intersection(item.fixturenames):
        return True
    path = Path(item.path)
    if not path.is_relative_to(TESTS):
        return False
    module = path.relative_to(TESTS).as_posix()
    return module.split("/", 1)[0] in ROOT_FOLDERS and module not in UNPRIVILEGED_MODULES


def pytest_collection_modifyitems(config, items):
    for item in items:
        if needs_root(item):
            item.add_marker(pytest.mark.root)


ADMIN_PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing():
    """The real hasher takes a third of a second a password, and most tests sign someone in."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser("admin", "", ADMIN_PASSWORD)


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


@pytest.fixture(scope="module")
def console_engine():
    """The engine the console under test drives (settings.ENGINE_ROOT), with a busybox image
    ``test/busybox:latest``; everything a test module left in it is removed afterwards."""
    from pathlib import Path

    from django.conf import settings

    from engine.config import EngineConfig
    from engine.images.store import ImageStore
    from tests.support.imagebuilder import busybox_image
    from tests.support.networks import remove_engine

    config = EngineConfig(root=Path(settings.ENGINE_ROOT), run_root=Path(settings.ENGINE_RUN_ROOT))
    prepare_engine(config)
    images = ImageStore(config)
    if not images.exists("test/busybox:latest"):
        busybox_image(images, ref="test/busybox:latest")
    yield config
    remove_engine(config)
