from django.urls import path

from console.volumes import views

urlpatterns = [
    path("", views.volume_list, name="volumes"),
    path("prune/", views.volume_prune, name="volume_prune"),
    path("<int:pk>/", views.volume_detail, name="volume_detail"),
    path("<int:pk>/remove/", views.volume_remove, name="volume_remove"),
]
