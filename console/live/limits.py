"""Bounds on the work a log search may cost, per user and per daphne process.

A search waits up to SEARCH_SECONDS (+ the child's grace) for its child process
(engine.logsearch). Waiting in ``asyncio.to_thread`` would take threads of the loop's small
default pool, which every live socket (log tails, stats samples) and Django's sync views
share: six searches by one read-only user would stall everyone. So searches wait in their
own small pool, a user's searches run two at a time (the others wait their turn), and one
more than a user or the process may have waiting is answered at once with "too many
searches". Live filters (one long-lived child process each) are counted per user and in all.
"""

from __future__ import annotations

import asyncio
import collections
from concurrent.futures import ThreadPoolExecutor

SEARCHES_PER_USER = 2  # running at once; more of theirs wait their turn
SEARCHES_WAITING_PER_USER = 16  # running or waiting (a merged page searches up to 12 logs)
SEARCHES_PER_PROCESS = 4  # the size of the searches' thread pool
SEARCHES_WAITING_PER_PROCESS = 64
FILTERS_PER_USER = 16
FILTERS_PER_PROCESS = 64


class TooMany(Exception):
    pass


class Slots:
    """Counted slots per user with a total cap, for what holds a child process while on."""

    def __init__(self, what: str, per_user: int, total: int):
        self.what, self.per_user, self.total = what, per_user, total
        self.held: collections.Counter[int] = collections.Counter()

    def take(self, user_pk: int) -> None:
        if self.held[user_pk] >= self.per_user:
            raise TooMany(f"Too many {self.what}: you have {self.per_user} on. Turn one off first.")
        if self.held.total() >= self.total:
            raise TooMany(f"Too many {self.what} are on in the console. Try again in a moment.")
        self.held[user_pk] += 1

    def give_back(self, user_pk: int) -> None:
        self.held[user_pk] -= 1
        if self.held[user_pk] <= 0:
            del self.held[user_pk]


class Searches:
    """At most ``per_user`` searches of a user run at once, in a pool of ``pool_size``
    threads of their own; more wait their turn, up to ``waiting_per_user`` for a user and
    ``waiting_total`` in all, beyond which the answer is TooMany at once. Used on the event
    loop only (no locks)."""

    def __init__(self, per_user: int, waiting_per_user: int, pool_size: int, waiting_total: int):
        self.per_user, self.waiting_per_user, self.waiting_total = per_user, waiting_per_user, waiting_total
        self.pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="log-search")
        self.pending: collections.Counter[int] = collections.Counter()
        self.turns: dict[int, asyncio.Semaphore] = {}

    async def run(self, user_pk: int, function, *args):
        if self.pending[user_pk] >= self.waiting_per_user:
            raise TooMany(f"Too many searches: you have {self.pending[user_pk]} running or waiting. "
                          "Try again when they end.")
        if self.pending.total() >= self.waiting_total:
            raise TooMany("Too many searches are running in the console. Try again in a moment.")
        self.pending[user_pk] += 1
        turn = self.turns.setdefault(user_pk, asyncio.Semaphore(self.per_user))
        try:
            async with turn:
                return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)
        finally:
            self.pending[user_pk] -= 1
            if self.pending[user_pk] <= 0:
                del self.pending[user_pk]
                self.turns.pop(user_pk, None)


searches = Searches(SEARCHES_PER_USER, SEARCHES_WAITING_PER_USER, SEARCHES_PER_PROCESS,
                    SEARCHES_WAITING_PER_PROCESS)
filters = Slots("live filters", FILTERS_PER_USER, FILTERS_PER_PROCESS)
