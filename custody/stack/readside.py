"""The read side of ``custodia servicio``, in a process of its own: the report projections and
the ledger's Merkle follower (signed checkpoints).

Both only read the ledger and write their own stores (the SQLite view, the checkpoints
stream). Run inside the command service, they competed with every command for the interpreter
at the worst moment: right after a command's event is stored, while its reply is being sealed
and sent (issue 6). So the service starts ``custodia servicio-lectura`` as a child
(:class:`ReadSide`): it restarts the child if it dies, stops it when the service stops, and the
child stops by itself when its parent is gone (killed). A lock file lets one read side per home
run at a time: a child started while an older one is still closing waits for it.

Reports ask the view how far it has got through :class:`ReportPosition`, which reads the view's
SQLite file (committed batches only) — the child is the only writer. The child runs at a lower
priority (``NICENESS``): with two cores, its work on the previous event competed with the next
command.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from custody.config import Settings

if TYPE_CHECKING:
    from custody.app.custodia import CustodiaApplication
    from custody.bootstrap import Endpoints

log = structlog.get_logger("custodia.lectura")

CHILD_COMMAND = "servicio-lectura"
REPORTS_DATABASE = "proyecciones.sqlite"  # the projections' SQLite view, in the home
RESTART_DELAY_S = 1.0
PARENT_POLL_S = 0.25
STOP_TIMEOUT_S = 20.0
# The read side is background work: on a busy machine the commands' processes go first (it
# catches up when they wait). Added to the service's own niceness.
NICENESS = 5


def child_argv() -> list[str]:
    """How the service starts its read side: this interpreter, the ``custodia`` entry point."""
    return [sys.executable, "-c", "from cli.main import main; main()", CHILD_COMMAND]


class ReadSide:
    """The child process running the read side, supervised from the service."""

    def __init__(
        self,
        argv: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        restart_delay: float = RESTART_DELAY_S,
    ) -> None:
        self.argv = list(argv or child_argv())
        self.env = dict(os.environ if env is None else env)
        self.restart_delay = restart_delay
        self.restarts = 0
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(
            target=self._supervise, name="custodia-lectura", daemon=True
        )

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self._spawn()
        self._supervisor.start()

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            # Its log lines go where the service's go (inherited stdout/stderr).
            self._process = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL)
        log.info("lectura_iniciada", pid=self._process.pid)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                process = self._process
            if process is None:
                return
            code = process.wait()
            if self._stopping.is_set():
                return
            log.error("lectura_terminada", pid=process.pid, codigo=code)
            if self._stopping.wait(self.restart_delay):
                return
            self.restarts += 1
            self._spawn()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the child (SIGTERM: it closes the view and the follower cleanly; SIGKILL if it
        does not within ``timeout``)."""
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if self._supervisor.is_alive():
            self._supervisor.join(timeout=5)


class ReportPosition:
    """How far the report view has got (read from its file) and how far the ledger has."""

    def __init__(self, app_env: Mapping[str, str], db_path: Path, ledger: Any) -> None:
        from eventsourcing.persistence import InfrastructureFactory
        from eventsourcing.utils import Environment

        from projections.projection import ReportsProjection
        from projections.runner import projection_env
        from projections.view import ReportsView

        env = Environment(ReportsProjection.name, projection_env(app_env, db_path))
        factory: Any = InfrastructureFactory.construct(env=env)
        self.view: ReportsView = factory.tracking_recorder(ReportsView)
        self.ledger = ledger

    def ledger_position(self) -> int:
        """The notification id of the ledger's last event (0 if none)."""
        return int(self.ledger.max_notification_id() or 0)

    def position(self) -> int:
        """The notification id of the last event the view reflects (0 if none)."""
        from projections.projection import APPLICATION_NAME

        return int(self.view.max_tracking_id(APPLICATION_NAME) or 0)

    def wait(self, notification_id: int, timeout: float = 10.0) -> None:
        """Block until the view reflects ``notification_id``; ``TimeoutError`` if it does not
        within ``timeout`` seconds."""
        from projections.projection import APPLICATION_NAME

        self.view.wait(APPLICATION_NAME, notification_id, timeout=timeout)

    def close(self) -> None:
        self.view.close()


@contextlib.contextmanager
def _only_one(home: Path) -> Iterator[None]:
    """One read side per home: wait for an older one that is still closing."""
    path = home / "lectura.lock"
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("lectura_esperando_a_la_anterior")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ReadSideServices(Protocol):
    """What the read side needs of the composition root's services (``custody.runner.Services``;
    named here, not imported: the composition root imports this module)."""

    @property
    def endpoints(self) -> Endpoints: ...

    @property
    def app(self) -> CustodiaApplication: ...

    def close(self) -> None: ...


def run(settings: Settings, build: Callable[[Settings], ReadSideServices]) -> None:
    """The child: run the projections and the follower until SIGTERM/SIGINT or until the
    process that started it is gone. ``build``: the composition root's
    (``custody.runner.build``), handed in by the command that starts the child."""
    from custody.ledger.service import start_follower
    from projections.runner import start_projections

    parent = os.getppid()
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with _only_one(settings.home):
        services = build(settings)
        projections = start_projections(
            services.endpoints.nats_env(), settings.home / REPORTS_DATABASE, on_error="continuar"
        )
        follower = start_follower(settings, services)
        from custody.stack.notices import (
            start_notices,  # issue 19: the e-mail outbox and its sender
        )

        notices = start_notices(services.endpoints, settings.home, os.environ)
        log.info("lectura_lista", pid=os.getpid())
        try:
            while not stop.is_set():
                # Raises what stopped the projection (its database failed): this process then
                # ends, and the service starts another, which resumes after the last batch.
                projections.run_forever(timeout=PARENT_POLL_S)
                if projections.runner.is_interrupted.is_set() and not stop.is_set():
                    raise RuntimeError("the projection stopped")
                if notices.stopped() and not stop.is_set():
                    raise RuntimeError("the notices outbox stopped")
                if os.getppid() != parent:
                    log.warning("lectura_sin_servicio")  # the service was killed
                    break
        except Exception as error:
            log.error("lectura_detenida", error=type(error).__name__, detalle=str(error)[:300])
            raise SystemExit(1) from None
        finally:
            if follower is not None:
                follower.stop()  # signs the tail first (finding 8)
            notices.close()
            projections.close()
            services.close()
