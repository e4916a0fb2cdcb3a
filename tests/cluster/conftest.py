"""One 3-node NATS cluster and one 3-node OpenBao raft cluster for all the cluster tests.

Starting them costs ~10 s, so they are shared (session scope). A test that kills nodes brings
them back before it ends; :func:`cluster` also heals whatever a failed test left down. The
figures each test measures are printed at the end of the run (``pytest_terminal_summary``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.figures import figures_of
from tests.support.cluster import Cluster

pytest.register_assert_rewrite("tests.cluster.helpers")


@pytest.fixture(scope="session")
def cluster_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Both clusters with TLS, on loopback; stopped at the end even if tests fail."""
    with Cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
def cluster(cluster_session: Cluster) -> Cluster:
    """The shared clusters with every node running and OpenBao active (heals earlier faults)."""
    nats, bao = cluster_session.nats, cluster_session.bao
    for node in nats.nodes:
        if not node.running:
            nats.restart(node.index)
    if any(not node.running for node in bao.nodes) or bao.active() is None:
        bao.start()  # starts the missing members and unseals every one
    assert bao.active() is not None
    return cluster_session


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Where a test puts what it measured (printed at the end of the run)."""
    return figures_of(request, "cluster figures")
