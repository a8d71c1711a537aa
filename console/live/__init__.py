"""Live views over websockets: container logs, the exec terminal, stats and engine events.

The protocol (messages, close codes, cursors) is in ``protocol`` and docs/websockets.md.
"""
