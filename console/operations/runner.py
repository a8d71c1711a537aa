"""The Celery task that runs every operation, and the registry of handlers.

A handler is ``func(ctx) -> dict`` registered with ``@handler("image.pull")``; the action's
permission, the tables to reconcile and what it creates are declared once in
``console.operations.actions``. It calls the engine through ``ctx.driver``, reports progress
with ``ctx.progress(...)`` / ``ctx.line(...)``, and returns the result to store. Engine
errors become the operation's error in the engine's words; the permission is checked again
when the task runs.

While a handler runs, a heartbeat thread stamps the row (``heartbeat_at``) so that the
reaper can tell a live operation from one whose worker died, and watches for a cancel
request: the driver then stops the work at its next chunk, line or layer, leaving no
partial file, and the operation ends "cancelled".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from asgiref.sync import async_to_sync
from celery import shared_task
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.utils import timezone

from console.access import ownership
from console.access.permissions import has_permission
from console.drivers import driver_for
from console.drivers.base import OperationCancelled
from console.operations import actions, sealed
from console.operations.models import Operation
from engine.errors import EngineError, from_os_error

log = logging.getLogger(__name__)


HANDLERS: dict[str, Callable] = {}


def handler(action: str):
    """Register ``func`` as what the worker does for ``action`` (declared in actions.py)."""
    actions.get(action)  # an undeclared action is a programming error: say so at import

    def register(func):
        HANDLERS[action] = func
        return func
    return register


MAX_LINES = 2000  # output lines kept on the row (builds); the stream carries all of them


@dataclass
class OperationContext:
    operation: Operation
    driver: object
    save_every: float = 0.5
    notify_every: float = 0.1
    _last_save: float = field(default=0.0)
    _last_notify: float = field(default=0.0)
    cancel: threading.Event = field(default_factory=threading.Event)
    _parameters: dict | None = field(default=None, repr=False)

    @property
    def parameters(self) -> dict:
        """As given to ``start``: secrets the row shows redacted are decrypted (``sealed``)."""
        if self._parameters is None:
            self._parameters = sealed.unseal(self.operation.parameters)
        return self._parameters

    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise OperationCancelled("cancelled")

    def progress(self, event: dict) -> None:
        """A per-layer progress event from the engine: {"id", "status", "current", "total"}."""
        self.check_cancelled()
        layers = self.operation.progress.setdefault("layers", {})
        layers[event["id"]] = {k: event.get(k) for k in ("status", "current", "total")}
        self._flush(force=event.get("status") not in ("Downloading", "Pushing"))

    def line(self, text: str) -> None:
        self.check_cancelled()
        lines = self.operation.progress.setdefault("lines", [])
        lines.append(text)
        del lines[:-MAX_LINES]
        publish(self.operation, {"kind": "line", "text": text})
        self._flush(force=False, notify=False)

    def _flush(self, force: bool, notify: bool = True) -> None:
        now = time.monotonic()
        if force or now - self._last_save >= self.save_every:
            Operation.objects.filter(pk=self.operation.pk).update(progress=self.operation.progress,
                                                                  heartbeat_at=timezone.now())
            self._last_save = now
        if notify and (force or now - self._last_notify >= self.notify_every):
            publish(self.operation, {"kind": "progress"})
            self._last_notify = now


def publish(operation: Operation, message: dict) -> None:
    """Tell the operation's watchers (its page, lists) that something changed."""
    layer = get_channel_layer()
    payload = {"type": "operation.update", "operation_id": str(operation.pk), **message}
    async_to_sync(layer.group_send)(operation.group, payload)
    async_to_sync(layer.group_send)(f"operations.{operation.environment_id}", payload)


class Heartbeat(threading.Thread):
    """Beside the handler: stamps ``heartbeat_at`` every HEARTBEAT seconds (the handler may
    block for long without progress) and polls the row for a cancel request."""

    def __init__(self, ctx: OperationContext):
        super().__init__(name=f"heartbeat-{ctx.operation.pk}", daemon=True)
        self.ctx = ctx
        self.every = float(settings.BERTH_OPERATION_HEARTBEAT_SECONDS)
        self.poll = min(self.every, 0.5)
        self.done = threading.Event()

    def run(self) -> None:
        pk = self.ctx.operation.pk
        last_beat = time.monotonic()
        try:
            while not self.done.wait(self.poll):
                try:
                    if Operation.objects.filter(pk=pk, cancel_requested_at__isnull=False).exists():
                        self.ctx.cancel.set()
                    if time.monotonic() - last_beat >= self.every:
                        Operation.objects.filter(pk=pk, state=Operation.State.RUNNING).update(
                            heartbeat_at=timezone.now())
                        last_beat = time.monotonic()
                except Exception:  # a database hiccup must not end the operation
                    log.exception("heartbeat of operation %s failed", pk)
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)


def _claim(operation: Operation, worker: str) -> bool:
    """QUEUED -> RUNNING, once: a second delivery, or a cancel that came first, loses."""
    now = timezone.now()
    claimed = Operation.objects.filter(pk=operation.pk, state=Operation.State.QUEUED).update(
        state=Operation.State.RUNNING, started_at=now, heartbeat_at=now, worker=worker)
    if claimed:
        operation.state, operation.started_at, operation.heartbeat_at = Operation.State.RUNNING, now, now
        operation.worker = worker
    return bool(claimed)


def _cancelled_error(operation: Operation) -> str:
    operation.refresh_from_db(fields=["cancel_requested_by"])
    who = operation.cancel_requested_by
    return f"Cancelled by {who}." if who else "Cancelled."


def _finish(operation: Operation, state: str, *, result: dict | None = None, error: str = "") -> None:
    operation.state = state
    operation.result = result or {}
    operation.error = error
    operation.finished_at = timezone.now()
    operation.parameters = sealed.forget(operation.parameters)  # its secrets are needed no more
    operation.save(update_fields=["state", "result", "error", "finished_at", "progress", "parameters"])


@shared_task(name="console.operations.run", bind=True)
def run_operation(self, operation_id: str) -> str:
    from console.inventory.reconcile import reconcile

    try:
        operation = Operation.objects.select_related("environment", "user").get(pk=operation_id)
    except Operation.DoesNotExist:
        return "missing"
    if operation.state != Operation.State.QUEUED:
        return operation.state  # delivered twice: run once
    func = HANDLERS.get(operation.action)
    spec = actions.ACTIONS.get(operation.action)
    if func is None or spec is None:
        _finish(operation, Operation.State.FAILED, error=f"No handler for {operation.action}")
        publish(operation, {"kind": "state"})
        return operation.state
    resource = (operation.target_type, operation.target_id) if operation.target_id else None
    if not has_permission(operation.user, spec.permission, operation.environment, resource):
        # The user lost the right between asking and running.
        _finish(operation, Operation.State.CANCELLED, error="Permission withdrawn before the operation ran.")
        publish(operation, {"kind": "state"})
        return operation.state

    if not _claim(operation, self.request.hostname or ""):
        operation.refresh_from_db()
        return operation.state  # delivered twice, or cancelled while queued
    publish(operation, {"kind": "state"})
    driver = driver_for(operation.environment)
    ctx = OperationContext(operation, driver)
    driver.cancelled = ctx.cancelled
    heartbeat = Heartbeat(ctx)
    heartbeat.start()
    state, result, error = Operation.State.SUCCEEDED, {}, ""
    try:
        result = func(ctx) or {}
    except OperationCancelled:
        state, error = Operation.State.CANCELLED, _cancelled_error(operation)
    except PermissionDenied as exc:  # a handler's own check of what the user may still do
        state, error = Operation.State.CANCELLED, str(exc)
    except EngineError as exc:
        state, error = Operation.State.FAILED, str(exc)
    except OSError as exc:  # a full disk under the engine says so in one line, not as a traceback
        log.warning("operation %s (%s) failed: %s", operation.pk, operation.action, exc)
        engine_root = getattr(getattr(driver, "config", None), "root", "the engine root")
        state, error = Operation.State.FAILED, str(from_os_error(exc, engine_root))
    except Exception as exc:
        log.exception("operation %s (%s) failed", operation.pk, operation.action)
        state, error = Operation.State.FAILED, f"Internal error: {exc.__class__.__name__}: {exc}"
    finally:
        heartbeat.stop()
    if state == Operation.State.FAILED and ctx.cancelled():
        # The engine's own words for a stop we asked for (a build says "the build was cancelled").
        state, error = Operation.State.CANCELLED, _cancelled_error(operation)
    # The mirror is brought up to date before the operation says it is done, so that
    # whoever sees "succeeded" sees its effect in the lists too.
    for kind in spec.reconcile:
        try:
            reconcile(operation.environment, kind, driver)
        except Exception:
            log.exception("reconcile of %s after %s failed", kind, operation.pk)
    if state == Operation.State.SUCCEEDED:
        try:
            ownership.record_from_result(operation, result, spec.creates)  # who owns what it made
        except Exception:
            log.exception("recording the ownership of %s's result failed", operation.pk)
    _finish(operation, state, result=result, error=error)
    publish(operation, {"kind": "state"})
    return operation.state
