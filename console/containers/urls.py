from django.urls import path

from console.containers import views

urlpatterns = [
    path("", views.container_list, name="containers"),
    path("new/", views.container_create, name="container_create"),
    path("bulk/", views.container_bulk, name="container_bulk"),
    path("<int:pk>/", views.container_detail, name="container_detail"),
    path("<int:pk>/rename/", views.container_rename, name="container_rename"),
    path("<int:pk>/<str:verb>/", views.container_action, name="container_action"),
]
