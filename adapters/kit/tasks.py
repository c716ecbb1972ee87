"""Background loops an adapter can stop by itself.

An adapter's loops (writer, ticker, sweeper, the WebSocket client's reader) run in the engine's task
group through ``start_task``, but ``close`` must end them while the engine runs on, and a ``connect``
that fails must not leave the loops it started behind. Each adapter kept its own set of cancel
scopes for that; :class:`StoppableTasks` is that set, once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

__all__ = ["StoppableTasks"]


class StoppableTasks:
    """Loops started through ``start_task`` (the adapter's :meth:`engine.venue.VenueAdapter.start_task`,
    which contains a crash), each under a cancel scope that :meth:`cancel` ends."""

    def __init__(self, start_task: Callable[..., None]) -> None:
        self._start_task = start_task
        self._scopes: set[anyio.CancelScope] = set()

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any, name: str | None = None) -> None:
        """Run ``fn(*args)`` in the background until it returns or :meth:`cancel` is called."""
        self._start_task(self._guard, fn, *args, name=name)

    async def _guard(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        with anyio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                await fn(*args)
            finally:
                self._scopes.discard(scope)

    def cancel(self) -> None:
        """Stop every loop still running (they end at their next checkpoint)."""
        for scope in list(self._scopes):
            scope.cancel()

    async def or_cancel(self, connect: Callable[[], Awaitable[Any]]) -> None:
        """Await ``connect()``; when it fails (or is cancelled) stop the loops started for it, then
        let the failure through: a connect that failed leaves nothing running."""
        try:
            await connect()
        except BaseException:
            self.cancel()
            raise
