"""Ports chosen for servers lie outside the kernel's ephemeral range and are never handed out twice.

A cluster chooses every member's ports before starting them one by one; a port inside the
ephemeral range could meanwhile become the local port of some outgoing connection (CI saw
``port … for bao-3 is already in use``).
"""

from __future__ import annotations

import socket

import pytest

from custody.stack import servers


def test_free_ports_avoid_the_ephemeral_range_and_repeat_never() -> None:
    low, high = servers.ephemeral_port_range()
    ports = [servers.free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(not low <= port <= high for port in ports)
    for port in ports[:20]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((servers.LOOPBACK, port))  # really free


def test_a_port_in_use_is_not_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    from custody.config import PORT_PARTITION

    monkeypatch.delenv(PORT_PARTITION.key, raising=False)  # both ports of the pair may be chosen
    first, second = servers.free_port_pair()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind((servers.LOOPBACK, first))
        held.listen()
        # Only ``first`` and ``second`` lie outside the (pretended) ephemeral range.
        monkeypatch.setattr(servers, "_HANDED_OUT", set())
        monkeypatch.setattr(servers, "_LOWEST_PORT", first)
        monkeypatch.setattr(servers, "ephemeral_port_range", lambda: (second + 1, 65535))
        assert not servers.port_is_free(first)
        assert servers.free_port() == second
        assert servers.free_port() not in {first, second}  # none left: the kernel's choice


def test_pairs_are_adjacent_and_distinct() -> None:
    pairs = [servers.free_port_pair() for _ in range(30)]
    flat = [port for pair in pairs for port in pair]
    assert all(second == first + 1 for first, second in pairs)
    assert len(set(flat)) == len(flat)


def test_a_port_partition_gives_each_worker_ports_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``CUSTODIA_PORT_PARTITION=i/n`` (set by the test suite for each xdist worker, inherited by
    the processes it starts): every port handed out is ``i`` modulo ``n``; malformed or unset,
    any port."""
    from custody.config import PORT_PARTITION
    from custody.stack import servers

    for share in (0, 1):
        monkeypatch.setenv(PORT_PARTITION.key, f"{share}/2")
        assert servers.port_partition() == (share, 2)
        assert {servers.free_port() % 2 for _ in range(20)} == {share}
    for bad in ("", "x", "3/2", "-1/2", "1/0"):
        monkeypatch.setenv(PORT_PARTITION.key, bad)
        assert servers.port_partition() == (0, 1)
