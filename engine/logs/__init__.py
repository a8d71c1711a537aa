"""Container logs, from the container to the reader: the writer the monitor uses (JSON lines,
rotated), reading and following them, the raw stream a websocket sends on, and searching
them in a child process."""
