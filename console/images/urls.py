from django.urls import path

from console.images import build, transfer, views

urlpatterns = [
    path("", views.image_list, name="images"),
    path("pull/", views.image_pull, name="image_pull"),
    path("remove/", views.image_remove, name="image_remove"),
    path("prune/", views.image_prune, name="image_prune"),
    path("import/", transfer.image_import, name="image_import"),
    path("build/", build.image_build, name="image_build"),
    path("export/", transfer.image_export, name="image_export"),
    path("export/<uuid:pk>/download/", transfer.export_download, name="image_export_download"),
    path("<int:pk>/", views.image_detail, name="image_detail"),
    path("<int:pk>/tag/", views.image_tag, name="image_tag"),
    path("<int:pk>/push/", views.image_push, name="image_push"),
]
