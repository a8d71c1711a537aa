"""Running a container: the OCI runtime (runc) with its spec, and the users and groups
of an image a process runs as."""
