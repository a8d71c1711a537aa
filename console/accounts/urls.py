from django.urls import path

from console.accounts import auth_views, views

urlpatterns = [
    path("", views.user_list, name="users"),
    path("new/", views.user_create, name="user_create"),
    path("<int:pk>/", views.user_detail, name="user_detail"),
    path("access/", views.effective_access, name="effective_access"),
    path("two-factor/", auth_views.two_factor, name="two_factor"),
    path("ownership/<str:kind>/<str:engine_id>/", views.ownership_detail, name="ownership"),
    path("teams/", views.team_list, name="teams"),
    path("teams/new/", views.team_create, name="team_create"),
    path("teams/<int:pk>/", views.team_detail, name="team_detail"),
    path("teams/<int:pk>/members/", views.team_add_member, name="team_add_member"),
    path("teams/<int:pk>/members/<int:user_pk>/remove/", views.team_remove_member, name="team_remove_member"),
    path("teams/<int:pk>/delete/", views.team_delete, name="team_delete"),
    path("roles/", views.role_list, name="roles"),
    path("roles/new/", views.role_edit, name="role_create"),
    path("roles/<int:pk>/", views.role_edit, name="role_edit"),
    path("roles/<int:pk>/delete/", views.role_delete, name="role_delete"),
    path("assignments/", views.assignment_create, name="assignment_create"),
    path("assignments/<int:pk>/delete/", views.assignment_delete, name="assignment_delete"),
]
