"""An asyncio event loop run by whichever thread needs it: callers first, a keeper otherwise.

``eventsourcing`` calls recorders synchronously and nats-py is asyncio. A loop that only a
thread of its own runs costs every call two thread wake-ups, there and back; measured here,
that was a quarter of a single-event save. So a caller with no loop of its own runs the loop
itself (``run_until_complete``) for the time of its call, and is woken directly by the socket
it waits on. The *keeper* thread runs the loop whenever no caller does, so that the connection
still answers the server's pings, reconnects, and feeds subscriptions between calls.

One thread at a time runs the loop (the *drive* lock). A caller that finds the keeper running
it asks it to stop (a callback that stops the loop only in the keeper's thread) and waits for
the lock: that hand-over costs what the two wake-ups cost before, once per burst of calls. The
keeper takes the loop back only after ``grace`` seconds without callers, so back-to-back calls
never hand over; work for the loop that arrives in between (a subscription's message, a
timer) waits at most that long. Work handed in by :meth:`LoopDriver.submit` (a caller that
waits for it without running the loop) is taken up at once.

A caller already inside a running event loop (a coroutine calling synchronous code) cannot run
another one in its thread: its call is handed to the keeper and waited for, as before.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

logger = logging.getLogger("events.jetstream")

T = TypeVar("T")

# Seconds without callers before the keeper runs the loop again.
GRACE = 0.005
# A caller waiting for the loop checks this often whether the driver was stopped meanwhile.
_WAIT_CHECK = 1.0


class LoopStoppedError(RuntimeError):
    """The driver was stopped: its loop runs nothing more."""


class InsideLoopError(RuntimeError):
    """A blocking call was made from a callback of the very loop it needs."""


class LoopDriver:
    """An event loop with a keeper thread; thread-safe. Stop it with :meth:`stop`."""

    def __init__(self, name: str, grace: float = GRACE) -> None:
        self.grace = grace
        self._loop = asyncio.new_event_loop()
        # Who runs the loop: ``_busy`` while someone does (a caller or the keeper); callers that
        # wait for it queue up, oldest first, each blocked on a gate of its own that the one
        # running the loop opens when done (the loop passes in turn: nobody waits forever).
        self._cond = threading.Condition(threading.Lock())
        self._busy = False
        self._queue: deque[threading.Lock] = deque()
        self._keeper_owns = False  # the keeper is the one running the loop
        self._handed_in = 0  # calls handed in by callers that found the loop busy, not done
        self._serving = False  # the keeper runs the loop, until asked to stop
        self._urgent = False  # work was handed in: the keeper should run the loop now
        self._released = time.monotonic()  # when a caller last ended a call, and who
        self._last_caller = 0
        self._stopping = False
        self._stopped = False
        self._keeper = threading.Thread(target=self._keep, name=name, daemon=True)
        self._keeper.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def stopped(self) -> bool:
        return self._stopping

    def inside(self) -> bool:
        """Whether the calling thread is running this driver's loop (in one of its callbacks)."""
        return asyncio._get_running_loop() is self._loop

    # -- calls ---------------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and return its result (or raise its exception)."""
        if self._stopping:
            coro.close()
            raise LoopStoppedError
        running = asyncio._get_running_loop()
        if running is self._loop:
            coro.close()
            raise InsideLoopError
        if running is not None:
            return self._hand_in(coro, counted=False)
        try:
            runs_loop = self._take()
        except BaseException:
            coro.close()
            raise
        if not runs_loop:
            return self._hand_in(coro, counted=True)
        try:
            if self._loop.is_closed():
                coro.close()
                raise LoopStoppedError
            result = self._loop.run_until_complete(coro)
            if self._handed_in:
                # Calls handed in may have been woken in the last step (say, by a lock our call
                # released): let them go on to their next wait (a publish is sent) first.
                self._loop.stop()
                self._loop.run_forever()
            return result
        finally:
            self._give(caller=True)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` without waiting for it; the loop runs it at once (a thread-safe
        future)."""
        if self._stopping:
            coro.close()
            raise LoopStoppedError
        if self.inside():
            coro.close()
            raise InsideLoopError
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError:  # the loop is closed
            coro.close()
            raise LoopStoppedError from None
        self._nudge()
        return future

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` in the loop soon (from any thread)."""
        self._loop.call_soon_threadsafe(callback)
        if not self.inside():
            self._nudge()

    def _hand_in(self, coro: Coroutine[Any, Any, T], *, counted: bool) -> T:
        """Have whoever runs the loop run ``coro``, and wait for it (``counted``: a caller that
        found the loop busy, already counted in ``_handed_in``)."""
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError:  # the loop is closed
            coro.close()
            if counted:
                self._handed_done(None)
            raise LoopStoppedError from None
        if counted:
            future.add_done_callback(self._handed_done)
        self._nudge()
        try:
            while True:
                try:
                    return future.result(timeout=_WAIT_CHECK)
                except concurrent.futures.TimeoutError:
                    if self._stopped:
                        raise LoopStoppedError from None
                except concurrent.futures.CancelledError:
                    raise LoopStoppedError from None
        finally:
            with self._cond:
                self._released = time.monotonic()
                self._last_caller = threading.get_ident()

    def _handed_done(self, _: object) -> None:
        with self._cond:
            self._handed_in -= 1

    # -- taking turns --------------------------------------------------------------------------

    def _take(self) -> bool:
        """Become the one who runs the loop (True), or be told to hand the call in (False).

        The loop is free: take it. The keeper runs it with nothing handed in: ask it to let go,
        and wait for it. Someone else runs it, or work handed in is under way: hand the call in,
        so that it is sent as soon as the loop runs, without waiting for a hand-over.
        """
        with self._cond:
            if not self._busy:
                self._busy = True
                return True
            others = (
                self._last_caller != threading.get_ident()
                and time.monotonic() - self._released < self.grace
            )
            if not self._keeper_owns or self._handed_in or self._queue or others:
                self._handed_in += 1
                return False
            gate = threading.Lock()
            gate.acquire()
            self._queue.append(gate)
        while True:
            with contextlib.suppress(RuntimeError):  # closed meanwhile: seen below
                self._loop.call_soon_threadsafe(self._yield_keeper)
            if gate.acquire(timeout=_WAIT_CHECK):
                return True  # handed over
            if self._stopped:
                with self._cond:
                    if gate in self._queue:
                        self._queue.remove(gate)
                        raise LoopStoppedError
                gate.acquire()  # handed over just now: take it, and pass it on
                self._give(caller=True)
                raise LoopStoppedError

    def _give(self, *, caller: bool) -> None:
        """Stop running the loop: hand it to the oldest waiting caller, if any."""
        with self._cond:
            if caller:
                self._released = time.monotonic()
                self._last_caller = threading.get_ident()
            else:
                self._keeper_owns = False
            if self._queue:
                self._queue.popleft().release()  # still busy: that caller runs it now
            else:
                self._busy = False
                if self._urgent or self._handed_in or self._stopping:
                    self._cond.notify_all()

    def _yield_keeper(self) -> None:
        """Stop the loop if the keeper serves it (a no-op in anybody's ``run_until_complete``)."""
        if self._serving and threading.current_thread() is self._keeper:
            self._loop.stop()

    def _nudge(self) -> None:
        with self._cond:
            self._urgent = True
            self._cond.notify_all()

    # -- the keeper ----------------------------------------------------------------------------

    def _keep(self) -> None:
        while self._wait_for_turn():
            try:
                self._serving = True
                self._loop.run_forever()
            except Exception:  # a callback's error escaped the loop: keep serving
                logger.exception("error in the NATS event loop")
            finally:
                self._serving = False
                self._give(caller=False)
        self._finish()

    def _wait_for_turn(self) -> bool:
        """Wait until the keeper should run the loop, and take it; False once stopping."""
        with self._cond:
            while not self._stopping:
                if self._busy or self._queue:
                    self._cond.wait(self.grace)
                    continue
                idle = time.monotonic() - self._released
                if self._urgent or self._handed_in or idle >= self.grace:
                    self._urgent = False
                    self._busy = True
                    self._keeper_owns = True
                    return True
                self._cond.wait(self.grace - idle)
            return False

    def _finish(self) -> None:
        """Cancel what is left on the loop and close it (in the keeper, once stopping)."""

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with self._cond:
            while self._busy:
                self._cond.wait(0.05)
            self._busy = True
            self._keeper_owns = True
        try:
            self._loop.run_until_complete(cancel_all())
        except Exception as e:  # stopping must not raise
            logger.debug("cancelling the NATS loop's tasks failed: %s", e)
        finally:
            self._stopped = True
            self._loop.close()
            self._give(caller=False)  # a caller still queued sees the loop closed, and so on

    # -- stopping ------------------------------------------------------------------------------

    def stop_soon(self) -> None:
        """Stop without waiting (from anywhere, the loop's own callbacks included)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._yield_keeper)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel the loop's tasks, close it and join the keeper. Idempotent."""
        self.stop_soon()
        if threading.current_thread() is not self._keeper:
            self._keeper.join(timeout)
