from django.urls import path

from console.networks import views

urlpatterns = [
    path("", views.network_list, name="networks"),
    path("prune/", views.network_prune, name="network_prune"),
    path("<int:pk>/", views.network_detail, name="network_detail"),
    path("<int:pk>/remove/", views.network_remove, name="network_remove"),
]
