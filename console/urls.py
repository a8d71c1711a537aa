from django.contrib.auth import views as auth_views
from django.urls import include, path

from console.accounts.auth_views import SignInView, sign_in_code
from console.web import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    # Lockout with back-off after repeated failures, then the two-factor code when it is on.
    path("login/", SignInView.as_view(), name="login"),
    path("login/code/", sign_in_code, name="login_code"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("environment/", views.switch_environment, name="switch_environment"),
    path("healthz", views.healthz, name="healthz"),
    path("images/", include("console.images.urls")),
    path("containers/", include("console.containers.urls")),
    path("volumes/", include("console.volumes.urls")),
    path("networks/", include("console.networks.urls")),
    path("operations/", include("console.operations.urls")),
    path("users/", include("console.accounts.urls")),
    path("audit/", include("console.audit.urls")),
    path("registries/", include("console.registries.urls")),
    path("live/", include("console.live.urls")),
    path("settings/", include("console.sitesettings.urls")),
]
