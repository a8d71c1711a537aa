"""Making images: Dockerfile parsing, the builder, and commit / export of a container."""
