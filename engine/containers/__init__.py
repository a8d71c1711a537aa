"""Containers: the container store and its lifecycle (create, start, stop, remove, inspect,
attach), exec sessions, the terminal, and resource statistics."""
