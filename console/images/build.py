"""The build page: a Dockerfile written in the page and/or an uploaded context tar."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render

from console.access.permissions import require
from console.core.environments import current_environment
from console.images import services

EXAMPLE = """FROM busybox:latest
RUN echo "built by Berth" > /greeting
CMD ["cat", "/greeting"]
"""


class BuildForm(forms.Form):
    tags = forms.CharField(max_length=1000, required=False, help_text="One or more, separated by spaces, e.g. team/app:1.0",
                           widget=forms.TextInput(attrs={"placeholder": "team/app:1.0"}))
    dockerfile = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false",
                                                                              "class": "code"}))
    context = forms.FileField(required=False, label="Context (a tar, optional)",
                              help_text="Files that COPY and ADD read; its Dockerfile is used when the box above is empty.")
    no_cache = forms.BooleanField(required=False, label="Do not use the build cache")


def image_build(request):
    environment = current_environment(request)
    require(request.user, "images.build", environment)
    form = BuildForm(request.POST or None, request.FILES or None, initial={"dockerfile": EXAMPLE})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            operation = services.build(request.user, environment, data["dockerfile"], data["tags"].split(),
                                       context=data["context"], no_cache=data["no_cache"])
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error("tags", exc)
        else:
            return redirect("operation_detail", operation.pk)
    return render(request, "images/build.html", {"form": form}, status=400 if form.errors else 200)
