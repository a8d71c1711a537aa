from django.urls import path

from console.audit import views

urlpatterns = [
    path("", views.audit_list, name="audit"),
    path("verify/", views.audit_verify, name="audit_verify"),
    path("export.csv", views.audit_export, {"fmt": "csv"}, name="audit_export_csv"),
    path("export.jsonl", views.audit_export, {"fmt": "jsonl"}, name="audit_export_jsonl"),
    path("<int:pk>/", views.audit_detail, name="audit_detail"),
    path("<int:pk>/play/", views.audit_play, name="audit_play"),
    path("<int:pk>/recording.cast", views.audit_recording, name="audit_recording"),
]
