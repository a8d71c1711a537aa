import pytest

from tests.support.services import prepare_engine

pytest_plugins = ["tests.support.browser", "tests.support.registry", "tests.support.worker"]

ADMIN_PASSWORD = "correct horse battery staple"


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
    from engine.images import ImageStore
    from tests.support.imagebuilder import busybox_image
    from tests.support.networks import remove_engine

    config = EngineConfig(root=Path(settings.ENGINE_ROOT), run_root=Path(settings.ENGINE_RUN_ROOT))
    prepare_engine(config)
    images = ImageStore(config)
    if not images.exists("test/busybox:latest"):
        busybox_image(images, ref="test/busybox:latest")
    yield config
    remove_engine(config)
