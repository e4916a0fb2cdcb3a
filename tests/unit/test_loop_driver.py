"""The loop driver: callers run the loop themselves, the keeper runs it between calls.

Pure asyncio (no server): who runs the loop, when, and that it is never two threads at once.
The same seam against a real NATS server is in ``tests/integration/eventstore``.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import os
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from events.jetstream.driver import InsideLoopError, LoopDriver, LoopStoppedError


@pytest.fixture
def driver() -> Iterator[LoopDriver]:
    d = LoopDriver("test-loop", grace=0.005)
    yield d
    d.stop()


async def runner_thread() -> threading.Thread:
    await asyncio.sleep(0)  # a real suspension: the answer comes after the loop ran again
    return threading.current_thread()


def in_thread(call: Callable[[], object], within: float) -> object:
    """``call()``'s result or exception, from another thread; a failure, not a hang, if it
    takes longer than ``within`` seconds."""
    outcome: list[object] = []

    def body() -> None:
        try:
            outcome.append(call())
        except BaseException as e:
            outcome.append(e)

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(within)
    assert outcome, f"still waiting after {within} s"
    return outcome[0]


def ctrl_c_in_main_while_a_worker_calls(
    driver: LoopDriver,
    main_call: Coroutine[Any, Any, object],
    worker_call: Callable[[], Coroutine[Any, Any, object]],
) -> list[object]:
    """The main thread runs ``main_call`` (expecting Ctrl-C to end it) while a worker thread's
    call, made 20 ms later, is handed in to it; returns what the worker got."""
    results: list[object] = []

    def worker() -> None:
        time.sleep(0.02)  # the main thread runs the loop by now: this call is handed in
        try:
            results.append(driver.run(worker_call()))
        except BaseException as e:
            results.append(e)

    t = threading.Thread(target=worker)
    t.start()
    with pytest.raises(KeyboardInterrupt):
        driver.run(main_call)
    t.join(5)
    return results


def wait_until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_caller_runs_the_loop_in_its_own_thread(driver: LoopDriver) -> None:
    assert driver.run(runner_thread()) is threading.current_thread()

    results: list[threading.Thread] = []
    other = threading.Thread(target=lambda: results.append(driver.run(runner_thread())))
    other.start()
    other.join()
    assert results == [other]


def test_between_calls_the_keeper_runs_the_loop(driver: LoopDriver) -> None:
    driver.run(runner_thread())
    ran_in: list[threading.Thread] = []
    driver.loop.call_soon_threadsafe(lambda: ran_in.append(threading.current_thread()))
    wait_until(lambda: ran_in)
    assert ran_in[0].name == "test-loop"

    # A task started by one call keeps going while nobody calls.
    ticks: list[int] = []

    async def tick() -> None:
        for _ in range(1_000_000):
            ticks.append(1)
            await asyncio.sleep(0.002)

    driver.submit(tick())
    time.sleep(0.2)
    assert len(ticks) > 20
    # ...and a caller still takes the loop over from the keeper.
    assert driver.run(runner_thread()) is threading.current_thread()


def test_submitted_work_is_taken_up_at_once_even_within_the_grace() -> None:
    driver = LoopDriver("test-loop", grace=30.0)  # the keeper would otherwise wait 30 s
    try:
        driver.run(runner_thread())
        started = time.monotonic()
        future = driver.submit(runner_thread())
        assert future.result(timeout=5).name == "test-loop"
        assert time.monotonic() - started < 5

        seen = threading.Event()
        driver.call_soon(seen.set)
        assert seen.wait(5)
    finally:
        driver.stop()


def test_a_caller_inside_another_running_loop_is_served_by_the_keeper(
    driver: LoopDriver,
) -> None:
    async def main() -> threading.Thread:
        return driver.run(runner_thread())

    assert asyncio.run(main()).name == "test-loop"


def test_a_call_from_the_loops_own_callback_is_refused(driver: LoopDriver) -> None:
    async def nested() -> None:
        driver.run(runner_thread())

    with pytest.raises(InsideLoopError):
        driver.run(nested())
    with pytest.raises(InsideLoopError):
        driver.run(_submit_from_inside(driver))
    assert driver.run(runner_thread()) is threading.current_thread()  # still serving


async def _submit_from_inside(driver: LoopDriver) -> None:
    driver.submit(runner_thread())


def test_errors_reach_the_caller_and_the_loop_keeps_serving(driver: LoopDriver) -> None:
    async def fail() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        driver.run(fail())
    assert driver.run(runner_thread()) is threading.current_thread()


def test_many_threads_share_the_loop_one_at_a_time(driver: LoopDriver) -> None:
    """asyncio refuses to run a loop that runs already: any overlap would be an error here."""
    inside = 0
    overlaps = 0
    done = 0
    errors: list[BaseException] = []
    lock = asyncio.Lock()  # bound to the driver's loop on first use

    async def step() -> None:
        nonlocal inside, overlaps, done
        async with lock:
            inside += 1
            overlaps += inside > 1
            await asyncio.sleep(0)
            inside -= 1
            done += 1

    async def background() -> None:
        for _ in range(1_000_000):
            await asyncio.sleep(0.001)

    driver.submit(background())

    def work() -> None:
        try:
            for i in range(300):
                driver.run(step())
                if i % 50 == 0:
                    time.sleep(0.01)  # let the keeper take the loop back now and then
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert done == 6 * 300
    assert overlaps == 0


def test_stopping_cancels_what_is_left_and_refuses_new_calls() -> None:
    driver = LoopDriver("test-loop", grace=0.005)
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    future = driver.submit(forever())
    driver.run(runner_thread())
    driver.stop()
    assert cancelled.is_set()
    assert future.cancelled()
    assert driver.loop.is_closed()
    assert not any(t.name == "test-loop" for t in threading.enumerate())
    coro = runner_thread()
    with pytest.raises(LoopStoppedError):
        driver.run(coro)
    with pytest.raises(LoopStoppedError):
        driver.submit(runner_thread())
    driver.stop()  # idempotent


def test_a_caller_finding_the_loop_busy_hands_its_call_in(driver: LoopDriver) -> None:
    """Its call runs within the current run at once, not after the long call it found."""
    started = threading.Event()
    release = threading.Event()

    async def long_call() -> None:
        started.set()
        for _ in range(2000):
            if release.is_set():
                return
            await asyncio.sleep(0.005)

    first = threading.Thread(target=lambda: driver.run(long_call()))
    first.start()
    assert started.wait(5)
    outcome: list[threading.Thread] = []
    second = threading.Thread(target=lambda: outcome.append(driver.run(runner_thread())))
    second.start()
    second.join(5)
    assert outcome == [first]  # run by the first caller, while its own call still ran
    assert not release.is_set()
    release.set()
    first.join(10)
    time.sleep(0.05)  # ten times the grace: nobody else called lately
    assert driver.run(runner_thread()) is threading.current_thread()  # taken over again
    driver.stop()
    with pytest.raises(LoopStoppedError):
        driver.run(runner_thread())


# -- found by an attack review of the driver: each mounted, each must fail on the old code --


def test_a_handed_in_call_raising_timeout_error_returns_it(driver: LoopDriver) -> None:
    """A call's own TimeoutError is not mistaken for the waiter's poll timing out (it spun)."""

    async def times_out() -> None:
        await asyncio.sleep(0)
        raise TimeoutError("the call's own")

    async def caller_in_a_loop() -> None:
        driver.run(times_out())  # handed in: this thread runs another loop

    outcome = in_thread(lambda: asyncio.run(caller_in_a_loop()), within=5)
    assert isinstance(outcome, TimeoutError)
    assert str(outcome) == "the call's own"


class Interrupted(BaseException):
    pass


def test_an_interrupted_wait_for_the_keeper_leaves_the_loop_usable(driver: LoopDriver) -> None:
    """A caller interrupted while queued for the keeper's hand-over does not strand the loop."""
    keeper_busy = threading.Event()

    def slow_callback() -> None:
        keeper_busy.set()
        time.sleep(0.3)  # the keeper is inside the loop: a caller must queue

    time.sleep(0.05)  # the keeper runs the loop by now
    driver.loop.call_soon_threadsafe(slow_callback)
    assert keeper_busy.wait(5)

    outcome: list[BaseException] = []

    def caller() -> None:
        try:
            driver.run(runner_thread())
        except BaseException as e:
            outcome.append(e)

    t = threading.Thread(target=caller)
    t.start()
    time.sleep(0.05)  # queued at the gate by now
    assert len(driver._queue) == 1
    # What Ctrl-C does to a waiting thread: an exception at its next step.
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(t.ident or 0), ctypes.py_object(Interrupted)
    )
    t.join(5)
    assert outcome
    assert isinstance(outcome[0], Interrupted)
    assert isinstance(in_thread(lambda: driver.run(runner_thread()), within=5), threading.Thread)
    seen = threading.Event()
    driver.call_soon(seen.set)
    assert seen.wait(5)


def test_a_task_raising_system_exit_does_not_end_the_keeper(driver: LoopDriver) -> None:
    async def exits() -> None:
        await asyncio.sleep(0)
        raise SystemExit(3)  # say, sys.exit() in a subscription's callback

    driver.submit(exits())
    time.sleep(0.2)
    assert driver._keeper.is_alive()
    seen = threading.Event()
    driver.call_soon(seen.set)
    assert seen.wait(5)  # the keeper still runs the loop between calls


def test_a_stop_left_by_an_interrupted_call_does_not_end_the_next(driver: LoopDriver) -> None:
    """An interruption in the step where a call finished leaves asyncio's stop pending."""

    def interrupt() -> None:
        raise KeyboardInterrupt  # Ctrl-C landing in another callback (asyncio lets it out)

    async def first() -> int:
        asyncio.get_running_loop().call_soon(interrupt)
        return 1

    with pytest.raises(KeyboardInterrupt):
        driver.run(first())

    async def second() -> str:
        await asyncio.sleep(0.05)
        return "second"

    assert driver.run(second()) == "second"


@pytest.mark.skipif(
    signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="SIGINT is taken by the test runner here",
)
def test_ctrl_c_in_the_main_thread_cancels_its_own_call_only(driver: LoopDriver) -> None:
    """Ctrl-C while the main thread runs the loop: its call is cancelled and it gets
    KeyboardInterrupt; another thread's call that the main thread was running goes on."""
    assert threading.current_thread() is threading.main_thread()
    cancelled = threading.Event()

    async def main_call() -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def worker_call() -> str:
        await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)  # arrives while this step runs in the main thread
        for _ in range(10_000):
            pass
        await asyncio.sleep(0.05)
        return "worker result"

    results = ctrl_c_in_main_while_a_worker_calls(driver, main_call(), worker_call)
    assert cancelled.is_set()
    assert results == ["worker result"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- found by a second attack review ------------------------------------------------------------


@pytest.mark.skipif(
    signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="SIGINT is taken by the test runner here",
)
def test_ctrl_c_after_the_main_threads_call_ended_stays_in_the_main_thread(
    driver: LoopDriver,
) -> None:
    """Ctrl-C in the extra step a call runs for calls handed in: still not the worker's."""
    woken: list[asyncio.Event] = []

    async def make_event() -> None:
        woken.append(asyncio.Event())

    driver.run(make_event())

    async def main_call() -> str:
        await asyncio.sleep(0.1)  # the worker hands its call in meanwhile
        asyncio.get_running_loop().call_soon(woken[0].set)  # runs after this call ended
        return "main result"

    async def worker_call() -> str:
        await woken[0].wait()
        os.kill(os.getpid(), signal.SIGINT)  # while this step runs in the main thread
        for _ in range(20_000):
            pass
        return "worker result"

    results = ctrl_c_in_main_while_a_worker_calls(driver, main_call(), worker_call)
    assert results == ["worker result"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_finalizer_calling_in_while_its_thread_holds_the_loop_does_not_wait_for_itself(
    driver: LoopDriver,
) -> None:
    """eventsourcing's ``__del__`` closes a factory wherever the garbage collector runs it."""
    outcome: list[object] = []
    holder: contextvars.ContextVar[object] = contextvars.ContextVar("holder")

    async def noop() -> str:
        return "the finalizer's call"

    class Finalized:
        def __del__(self) -> None:
            try:
                outcome.append(driver.run(noop()))
            except BaseException as e:
                outcome.append(e)

    async def call() -> str:
        holder.set(Finalized())  # lives in the task's context: freed with the task
        return "the call"

    assert in_thread(lambda: driver.run(call()), within=5) == "the call"
    assert len(outcome) == 1
    assert outcome[0] == "the finalizer's call" or isinstance(outcome[0], InsideLoopError)


def test_another_tasks_system_exit_does_not_reach_a_caller(driver: LoopDriver) -> None:
    async def background() -> None:
        await asyncio.sleep(0.05)
        raise SystemExit(3)

    async def my_call() -> str:
        await asyncio.sleep(0.2)
        return "my result"

    driver.submit(background())
    assert in_thread(lambda: driver.run(my_call()), within=5) == "my result"


def test_stopping_cancels_a_call_a_caller_runs_instead_of_waiting_for_it() -> None:
    driver = LoopDriver("test-loop", grace=0.005)
    started = threading.Event()

    async def long_call() -> str:
        started.set()
        try:
            await asyncio.sleep(30)
            return "finished"
        except asyncio.CancelledError:
            return "cancelled"

    results: list[object] = []
    t = threading.Thread(target=lambda: results.append(driver.run(long_call())))
    t.start()
    assert started.wait(5)
    began = time.monotonic()
    driver.stop(timeout=5)
    assert time.monotonic() - began < 5
    assert not driver._keeper.is_alive()
    t.join(5)
    assert results == ["cancelled"]
