"""An asyncio event loop run by whichever thread needs it: callers first, a keeper otherwise.

``eventsourcing`` calls recorders synchronously and nats-py is asyncio. A loop that only a
thread of its own runs costs every call two thread wake-ups, there and back; measured here,
that was a quarter of a single-event save. So a caller with no loop of its own runs the loop
itself (``run_until_complete``) for the time of its call, and is woken directly by the socket
it waits on. The *keeper* thread runs the loop whenever no caller does, so that the connection
still answers the server's pings, reconnects, and feeds subscriptions between calls.

Taking turns
    One thread at a time runs the loop. The keeper takes it back only after ``grace`` seconds
    without callers, so back-to-back calls of one thread never hand over; work for the loop
    that arrives in between (a subscription's message, a timer) waits at most that long. Work
    handed in (:meth:`LoopDriver.submit`, :meth:`LoopDriver.call_soon`) is taken up at once.

    A caller that finds the keeper running the loop with nothing else to do asks it to stop (a
    callback that stops only the keeper's own ``run_forever``) and waits at a gate of its own,
    in turn: that costs what the two wake-ups cost, once per burst. A caller that finds the
    loop busy otherwise (another caller runs it, or calls are under way) hands its coroutine in
    and waits for it, as a plain loop thread would have it: under contention calls go through
    the loop back to back, with no hand-over between them.

    A caller already inside a running event loop (a coroutine calling synchronous code) cannot
    run another one in its thread: its call is handed in. A call from the loop's own callbacks,
    from the keeper thread, or from a finalizer the garbage collector runs while this thread is
    inside :meth:`LoopDriver.run`, is refused (:class:`InsideLoopError`) rather than left to
    wait for itself. Stopping cancels the calls under way instead of waiting for them.

Interruptions
    Ctrl-C in the main thread while it runs the loop would land in whatever task the loop is
    stepping, perhaps another thread's call, or between two steps of the driver's bookkeeping.
    Like :class:`asyncio.Runner`, the driver takes SIGINT while the main thread is inside
    :meth:`LoopDriver.run` (when its handler is Python's default): the caller's own call is
    cancelled, and ``KeyboardInterrupt`` is raised once the turn is given back; a second Ctrl-C
    interrupts at once. A caller interrupted otherwise while it waits has its call cancelled.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import logging
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any, TypeVar

logger = logging.getLogger("events.jetstream")

T = TypeVar("T")

# Seconds without callers before the keeper runs the loop again.
GRACE = 0.005
# A caller waiting for the loop checks this often whether the driver was stopped meanwhile.
_WAIT_CHECK = 1.0
# Rounds of cancelling what is left on the loop when it stops (tasks may start others).
_CANCEL_ROUNDS = 10


class LoopStoppedError(RuntimeError):
    """The driver was stopped: its loop runs nothing more."""


class InsideLoopError(RuntimeError):
    """A blocking call was made where it would wait for itself (see the module)."""


class LoopDriver:
    """An event loop with a keeper thread; thread-safe. Stop it with :meth:`stop`."""

    def __init__(self, name: str, grace: float = GRACE) -> None:
        self.grace = grace
        self._loop = asyncio.new_event_loop()
        # Who runs the loop: ``_busy`` while someone does (a caller or the keeper); callers that
        # wait for it queue up, oldest first, each blocked on a gate of its own that the one
        # running the loop opens when done. Reentrant only so that :meth:`reentrant` can tell a
        # finalizer that this thread is inside the bookkeeping (it then must not come in).
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._busy = False
        self._queue: deque[threading.Lock] = deque()
        self._keeper_owns = False  # the keeper is the one running the loop
        self._serving = False  # the keeper runs the loop, until asked to stop
        self._handed_in = 0  # calls handed in by callers that found the loop busy, not done
        self._urgent = False  # work was handed in: the keeper should run the loop now
        self._released = time.monotonic()  # when a caller last ended a call, and who
        self._last_caller = 0
        self._stopping = False
        self._stopped = False
        # Futures of work handed in: cancelled if the loop closes before running them.
        self._futures: weakref.WeakSet[concurrent.futures.Future[Any]] = weakref.WeakSet()
        self._calling = threading.local()  # ``on`` while this thread is inside run()
        self._finishing = False  # the keeper cancels what is left: stop_soon's own pass is off
        self._keeper = threading.Thread(target=self._keep, name=name, daemon=True)
        self._keeper.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def inside(self) -> bool:
        """Whether the calling thread is running this driver's loop (in one of its callbacks)."""
        return asyncio._get_running_loop() is self._loop

    def reentrant(self) -> bool:
        """Whether a blocking call from here would wait for itself: from the loop's callbacks,
        the keeper thread, or a finalizer run while this thread is inside :meth:`run` (in the
        driver's own bookkeeping, say)."""
        return (
            self.inside()
            or threading.current_thread() is self._keeper
            or self._lock._is_owned()  # type: ignore[attr-defined]
            or getattr(self._calling, "on", False)
        )

    # -- calls ---------------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and return its result (or raise its exception)."""
        if self._stopping:
            coro.close()
            raise LoopStoppedError
        if self.reentrant():
            coro.close()
            raise InsideLoopError
        if asyncio._get_running_loop() is not None:
            return self._hand_in(coro, counted=False, guard=None)
        # From here until the turn is given back, a finalizer's call from this thread would wait
        # for itself, and Ctrl-C in the main thread must not cut the bookkeeping in two.
        self._calling.on = True
        try:
            with _SigintGuard() as guard:
                try:
                    runs_loop = self._take()
                except BaseException:
                    coro.close()
                    raise
                if not runs_loop:
                    return self._hand_in(coro, counted=True, guard=guard)
                try:
                    if self._loop.is_closed():
                        coro.close()
                        raise LoopStoppedError
                    return self._run_here(coro, guard)
                finally:
                    self._give(caller=True)
        finally:
            self._calling.on = False

    def _run_here(self, coro: Coroutine[Any, Any, T], guard: _SigintGuard) -> T:
        """Run the loop in this thread until ``coro`` is done (this thread holds the turn)."""
        loop = self._loop
        task = loop.create_task(coro)
        guard.cancel = task.cancel
        try:
            while True:
                try:
                    result = loop.run_until_complete(task)
                    break
                except RuntimeError:
                    if task.done() or loop.is_running():
                        raise  # the call's own error, or another runner (never: a bug)
                    # A stop left over from an interrupted run ended this one: go on.
                except SystemExit:
                    if task.done():
                        raise
                    # Another task's (the keeper logs those too): not this caller's business.
                    logger.exception("error in the NATS event loop")
        except BaseException:
            task.cancel()  # interrupted: the call is not left to run on its own
            raise
        if self._handed_in:
            # Calls handed in may have been woken in the last step (say, by a lock this call
            # released): let them go on to their next wait (a publish is sent) first.
            loop.stop()
            loop.run_forever()
        return result

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
        self._track(future)
        self._nudge()
        return future

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` in the loop soon (from any thread)."""
        try:
            self._loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the loop is closed
            raise LoopStoppedError from None
        if not self.inside():
            self._nudge()

    def _hand_in(
        self, coro: Coroutine[Any, Any, T], *, counted: bool, guard: _SigintGuard | None
    ) -> T:
        """Have whoever runs the loop run ``coro``, and wait for it (``counted``: a caller that
        found the loop busy, already counted in ``_handed_in``)."""
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        except BaseException as e:
            if counted:
                self._handed_done(None)
            if asyncio.iscoroutine(coro):
                coro.close()
            if isinstance(e, RuntimeError):  # the loop is closed
                raise LoopStoppedError from None
            raise
        if counted:
            future.add_done_callback(self._handed_done)
        if guard is not None:
            guard.cancel = future.cancel
        self._track(future)
        self._nudge()
        try:
            while True:
                # Not future.result(timeout): its TimeoutError is the call's own TimeoutError.
                concurrent.futures.wait([future], timeout=_WAIT_CHECK)
                if future.cancelled():
                    raise LoopStoppedError
                if future.done():
                    return future.result()
                if self._stopped:
                    raise LoopStoppedError
        except BaseException:
            future.cancel()  # interrupted: the call is not left to run on its own
            raise
        finally:
            with self._cond:
                self._released = time.monotonic()
                self._last_caller = threading.get_ident()

    def _handed_done(self, _: object) -> None:
        with self._cond:
            self._handed_in -= 1

    def _track(self, future: concurrent.futures.Future[Any]) -> None:
        with self._cond:
            if not self._stopped:
                self._futures.add(future)
                return
        future.cancel()  # the loop closed meanwhile: it will never run

    # -- taking turns --------------------------------------------------------------------------

    def _take(self) -> bool:
        """Become the one who runs the loop (True), or be told to hand the call in (False).

        The loop is free: take it. The keeper runs it with nothing handed in and nobody else
        called lately: ask it to let go, and wait for it. Otherwise hand the call in, so that it
        is sent as soon as the loop runs, without waiting for a hand-over.
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
        try:
            while True:
                with contextlib.suppress(RuntimeError):  # closed meanwhile: seen below
                    self._loop.call_soon_threadsafe(self._yield_keeper)
                if gate.acquire(timeout=_WAIT_CHECK):
                    return True  # handed over
                if self._stopped:
                    raise LoopStoppedError
        except BaseException:  # stopped, or interrupted while waiting
            with self._cond:
                if gate in self._queue:
                    self._queue.remove(gate)
                    raise
            self._give(caller=True)  # it was handed over meanwhile: pass it on
            raise

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
        try:
            while self._wait_for_turn():
                try:
                    self._serving = True
                    self._loop.run_forever()
                except BaseException:  # escaped a callback (even SystemExit): keep serving
                    logger.exception("error in the NATS event loop")
                finally:
                    self._serving = False
                    self._give(caller=False)
        finally:
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
            for _ in range(_CANCEL_ROUNDS):  # tasks may start others as they unwind
                await asyncio.sleep(0)
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                if not tasks:
                    return
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

        with self._cond:
            while self._busy:
                self._cond.wait(0.05)
            self._busy = True
            self._keeper_owns = True
            self._finishing = True
        try:
            cancelling = self._loop.create_task(cancel_all())
            while True:
                try:
                    self._loop.run_until_complete(cancelling)
                    break
                except RuntimeError:
                    if cancelling.done() or self._loop.is_running():
                        raise
                    # A stop left over from an interrupted run ended this one: go on.
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        except BaseException as e:  # stopping must not raise
            logger.debug("cancelling the NATS loop's tasks failed: %s", e)
        finally:
            with self._cond:
                self._stopped = True  # from now on, nothing handed in can run
                left = list(self._futures)
            self._loop.close()
            for future in left:  # handed in too late to run: their waiters must not hang
                future.cancel()
            self._give(caller=False)  # a caller still queued sees the loop closed, and so on

    # -- stopping ------------------------------------------------------------------------------

    def stop_soon(self) -> None:
        """Stop without waiting (from anywhere, the loop's own callbacks included): calls under
        way are cancelled now, by whoever runs the loop, rather than waited for."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._cancel_calls)
            self._loop.call_soon_threadsafe(self._yield_keeper)

    def _cancel_calls(self) -> None:
        if not self._finishing:
            for task in asyncio.all_tasks(self._loop):
                task.cancel()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel the loop's tasks, close it and join the keeper. Idempotent."""
        self.stop_soon()
        if not self.reentrant():
            self._keeper.join(timeout)


# The C functions behind ``signal.getsignal``/``signal.signal``: the Python wrappers convert
# to enums (raising and catching a ValueError each time), ten times the cost, on every call.
_raw_signal = importlib.import_module("_signal")


class _SigintGuard:
    """While the main thread is inside :meth:`LoopDriver.run`: Ctrl-C cancels its call (then
    ``KeyboardInterrupt``, right after the call, as the default handler would have) instead of
    landing in whatever task the loop steps, or between two steps of the driver's bookkeeping.
    As :class:`asyncio.Runner` does; only where SIGINT has Python's default handler. A second
    Ctrl-C interrupts at once."""

    __slots__ = ("_handler", "_interrupted", "cancel")

    def __init__(self) -> None:
        self._handler: Callable[[int, FrameType | None], None] | None = None
        self._interrupted = False
        self.cancel: Callable[[], object] | None = None  # the call, once under way

    def __enter__(self) -> _SigintGuard:
        if (
            threading.current_thread() is threading.main_thread()
            and _raw_signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            handler = self._on_sigint
            with contextlib.suppress(ValueError, OSError):
                _raw_signal.signal(signal.SIGINT, handler)
                self._handler = handler
        return self

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self._interrupted:
            raise KeyboardInterrupt  # a second Ctrl-C
        self._interrupted = True
        if self.cancel is not None:
            self.cancel()

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if self._handler is not None and _raw_signal.getsignal(signal.SIGINT) is self._handler:
            _raw_signal.signal(signal.SIGINT, signal.default_int_handler)
        if self._interrupted:
            raise KeyboardInterrupt
