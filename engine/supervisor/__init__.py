"""The engine's own processes: the monitor that supervises each container, how it is
launched (plain or from the fork server), the command server behind ``python -m engine``
with its client, and what those servers share."""
