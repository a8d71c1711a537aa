from django.urls import path

from console.operations import views

urlpatterns = [
    path("", views.operation_list, name="operations"),
    path("<uuid:pk>/", views.operation_detail, name="operation_detail"),
    path("<uuid:pk>/cancel/", views.operation_cancel, name="operation_cancel"),
]
