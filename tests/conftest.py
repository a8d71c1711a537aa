import pytest

pytest_plugins = ["tests.support.browser", "tests.support.worker"]

ADMIN_PASSWORD = "correct horse battery staple"


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser("admin", "", ADMIN_PASSWORD)


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client
