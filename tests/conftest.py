"""Session fixtures that start real servers (NATS with JetStream, OpenBao) on free loopback ports.

They use the same code as the embedded stack (:mod:`custody.stack.servers`) and stop the servers
even
when tests fail. No mocks of NATS or Vault anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from custody.config import PORT_PARTITION
from custody.stack.servers import (
    BaoProcess,
    NatsConfig,
    NatsProcess,
    free_port,
    start_bao_dev,
    start_nats,
)
from tests.cluster.figures import Collected

# -- hypothesis profiles ----------------------------------------------------------------------
# ``ci``: no deadline (a loaded 2-core runner makes any per-example time bound flaky) and the
# same examples every run (derandomized: CI is not where a new counterexample is first found;
# a failure prints the blob that replays it). ``deep``: by hand, five times the examples and a
# persisted database under .hypothesis/ (``HYPOTHESIS_PROFILE=deep pytest tests/unit``); the
# default profile (local runs) keeps hypothesis's own database there too.
# Tests that set their own ``@settings`` keep those values; the profile fills in the rest.
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,  # the same examples every run (the database then has nothing to do)
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "deep",
    deadline=None,
    max_examples=500,
    database=DirectoryBasedExampleDatabase(Path(__file__).parents[1] / ".hypothesis" / "examples"),
    suppress_health_check=[HealthCheck.too_slow],
)
_ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if _ON_CI else "default"))


# -- each xdist worker listens on ports of its own -----------------------------------------------
# A test that stops a server may leave a client reconnecting to its port for minutes (nats-py
# does by default). Were the other worker to start a server on that port, the client would join
# it: a stray member of the service's queue group took two of a test's requests once. So each
# worker (and every process it starts: the variable is inherited) takes only its share of ports.
def _partition_ports() -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if worker.startswith("gw") and worker[2:].isdigit() and count.isdigit():
        os.environ[PORT_PARTITION.key] = f"{int(worker[2:])}/{int(count)}"


_partition_ports()


# -- on CI a skipped test is a failed run -------------------------------------------------------
# Every skip in the suite is conditional on the machine (today only the HTML report's browser
# test, without chromium); scripts/test.sh installs what they need, so on CI a skip means a
# check did not run, and the run must not pass as green.
_skipped: list[str] = []


_figures = Collected()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)
    _figures.add(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _ON_CI and _skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    _figures.summary(terminalreporter)
    if _ON_CI and _skipped:
        terminalreporter.write_line(
            f"CI: {len(_skipped)} prueba(s) omitida(s) cuentan como fallo: " + ", ".join(_skipped),
            red=True,
        )


def start_test_nats(workdir: Path, extra: str = "") -> NatsProcess:
    """A fresh single-node JetStream server on file storage under ``workdir`` (``extra``: raw
    configuration appended, e.g. an ``authorization`` block)."""
    port = free_port()
    http_port = free_port(exclude={port})
    config = NatsConfig(
        store_dir=workdir / "jetstream", port=port, http_port=http_port, extra=extra
    )
    return start_nats(config, workdir / "nats.conf", workdir / "nats.log")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsProcess]:
    """One JetStream server for the whole test session (tests isolate by stream/app name)."""
    proc = start_test_nats(tmp_path_factory.mktemp("nats"))
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: NatsProcess) -> str:
    return nats_server.url


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaoProcess]:
    """One OpenBao dev server (in memory) for the session; ``root_token`` is its root token."""
    proc = start_bao_dev(tmp_path_factory.mktemp("openbao"))
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def service_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``custodia servicio`` on the embedded NATS and OpenBao of a fresh home, DD05 staffed
    (:func:`tests.e2e.conftest.make_service_world`): one for the whole session, shared by
    tests/e2e and tests/security. It accumulates state: tests use names of their own, and
    districts of their own beyond the base ones (DD05, DD07, DD09): test_load DD10–DD21,
    test_leavers DD22–DD23."""
    from tests.e2e.conftest import make_service_world

    yield from make_service_world(tmp_path_factory)


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """Commands run in-process configure structlog; every test starts from the defaults."""
    yield
    structlog.reset_defaults()
