from django.contrib.auth import views as auth_views
from django.urls import include, path

from console.core import views
from console.core.forms import SignInForm
from console.core.navigation import NOT_BUILT_YET

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="core/login.html", authentication_form=SignInForm,
            redirect_authenticated_user=True,
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("environment/", views.switch_environment, name="switch_environment"),
    path("healthz", views.healthz, name="healthz"),
    path("images/", include("console.images.urls")),
    path("containers/", include("console.containers.urls")),
    path("operations/", include("console.operations.urls")),
    path("registries/", include("console.registries.urls")),
]

# Menu pages that are not built yet say so plainly; their apps replace these routes.
urlpatterns += [path(f"{name}/", views.not_built, {"url_name": name}, name=name) for name in NOT_BUILT_YET]
