from django.urls import path

from console.images import views

urlpatterns = [
    path("", views.image_list, name="images"),
    path("pull/", views.image_pull, name="image_pull"),
    path("remove/", views.image_remove, name="image_remove"),
    path("prune/", views.image_prune, name="image_prune"),
    path("<int:pk>/", views.image_detail, name="image_detail"),
    path("<int:pk>/tag/", views.image_tag, name="image_tag"),
    path("<int:pk>/push/", views.image_push, name="image_push"),
]
