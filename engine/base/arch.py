"""This host's architecture in the names OCI images and registries use (Go's GOARCH)."""

from __future__ import annotations

import os

# uname's machine -> the OCI architecture; OCI names map to themselves.
OCI_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
            "armv6l": "arm", "i386": "386", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x",
            "riscv64": "riscv64"}
# uname's machine -> the OCI variant, where there is one.
OCI_VARIANT = {"armv7l": "v7", "armv6l": "v6", "aarch64": "v8", "arm64": "v8"}


def oci_arch(name: str) -> str:
    return OCI_ARCH.get(name.lower(), name.lower())


def host_arch() -> str:
    return oci_arch(os.uname().machine)


def host_variant() -> str | None:
    return OCI_VARIANT.get(os.uname().machine.lower())
