from django.urls import path

from console.registries import views

urlpatterns = [
    path("", views.registry_list, name="registries"),
    path("add/", views.registry_add, name="registry_add"),
    path("<int:pk>/", views.registry_detail, name="registry_detail"),
    path("<int:pk>/edit/", views.registry_edit, name="registry_edit"),
    path("<int:pk>/delete/", views.registry_delete, name="registry_delete"),
    path("<int:pk>/test/", views.registry_test, name="registry_test"),
    path("<int:pk>/browse/", views.registry_browse, name="registry_browse"),
    path("<int:pk>/tags/", views.registry_tags, name="registry_tags"),
    path("<int:pk>/activity/", views.registry_activity, name="registry_activity"),
]
