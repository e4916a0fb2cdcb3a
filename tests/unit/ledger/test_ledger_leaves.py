"""Leaf bytes of a ledger entry, and the record checks that name reordered or inserted entries."""

from __future__ import annotations

from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from events.jetstream import records
from events.jetstream.errors import InvalidRecordError
from events.leaves import (
    MalformedLeafError,
    RecordChecker,
    RecordProblemKind,
    leaf_bytes,
    leaf_hash,
    parse_leaf,
)
from events.merkle import leaf_hash as merkle_leaf_hash

PREFIX = b"custodia.events."


def events_record(first_id: int, aggregate: UUID | str, versions: list[int]) -> tuple[bytes, bytes]:
    """``(subject, data)`` of an events record as the event store writes it."""
    events = [StoredEvent(aggregate, v, "custodia:cuenta.Rotada", b'{"m":1}') for v in versions]
    data = records.head(records.KIND_EVENTS, first_id) + records.encode_events_body(
        aggregate, events
    )
    return PREFIX + records.subject_token(aggregate).encode(), data


def tracking_record(first_id: int, upstream: str, notification: int) -> tuple[bytes, bytes]:
    data = records.head(records.KIND_TRACKING, first_id) + records.encode_tracking_body(
        upstream, notification, b""
    )
    return b"custodia.tracking." + upstream.encode(), data


A = UUID(int=1, version=4)
B = UUID(int=2, version=4)


@given(st.binary(max_size=300), st.binary(max_size=2000))
def test_leaf_bytes_round_trip(subject: bytes, data: bytes) -> None:
    """Every (subject, data) pair has one leaf encoding, and it parses back to the same pair."""
    assert parse_leaf(leaf_bytes(subject, data)) == (subject, data)


@given(st.binary(max_size=60), st.binary(max_size=60), st.integers(0, 100))
def test_leaf_encoding_is_injective_and_strict(subject: bytes, data: bytes, cut: int) -> None:
    """Moving a byte from the subject to the data changes the leaf; a cut or extended leaf is
    refused."""
    leaf = leaf_bytes(subject, data)
    if subject:
        assert leaf_bytes(subject[:-1], subject[-1:] + data) != leaf
    if cut < len(leaf):
        with pytest.raises(MalformedLeafError):
            parse_leaf(leaf[:cut])
    with pytest.raises(MalformedLeafError):
        parse_leaf(leaf + b"x")


def check(entries: list[tuple[int, tuple[bytes, bytes]]]) -> RecordChecker:
    checker = RecordChecker()
    for seq, (subject, data) in entries:
        checker.check(seq, subject, data)
    return checker


def honest() -> list[tuple[bytes, bytes]]:
    return [
        events_record(1, A, [1, 2]),
        events_record(3, B, [1]),
        tracking_record(4, "otra", 9),
        events_record(4, A, [3]),
        events_record(5, "DD05-x", [1]),
        events_record(6, B, [2, 3]),
    ]


def test_an_honest_ledger_has_no_record_problem() -> None:
    """Ids chain across multi-event and tracking records; versions follow per aggregate."""
    assert check(list(enumerate(honest(), 1))).problems == []


def test_swapped_entries_are_both_named_and_nothing_after() -> None:
    """Entries 4 and 5 swapped: the numbering breaks at 4 and 5 only."""
    entries = honest()
    entries[3], entries[4] = entries[4], entries[3]
    problems = check(list(enumerate(entries, 1))).problems
    assert [(p.kind, p.sequence) for p in problems] == [
        (RecordProblemKind.NUMBERING, 4),
        (RecordProblemKind.NUMBERING, 5),
    ]


def test_a_hole_is_left_to_the_merkle_verifier() -> None:
    """A missing entry (the Merkle verifier reports the hole) resynchronises the numbering and
    excuses the versions it held, instead of being reported again."""
    entries = list(enumerate([*honest(), events_record(8, A, [4])], 1))
    del entries[3]  # A's version 3
    assert check(entries).problems == []
    entries[-1] = (7, events_record(8, A, [2]))  # going back is still wrong
    assert [(p.kind, p.sequence) for p in check(entries).problems] == [
        (RecordProblemKind.VERSION_ORDER, 7)
    ]


def test_versions_must_follow_per_aggregate() -> None:
    """An aggregate's next record must start at its last version + 1."""
    entries = honest()
    entries[3] = events_record(4, A, [4])
    problems = check(list(enumerate(entries, 1))).problems
    assert [(p.kind, p.sequence, p.expected, p.found) for p in problems] == [
        (RecordProblemKind.VERSION_ORDER, 4, 3, 4)
    ]


def test_subject_must_name_the_aggregate_and_stay_in_the_ledger() -> None:
    """A record under another aggregate's subject, or outside the application, is invalid."""
    entries = honest()
    entries[1] = (entries[0][0], entries[1][1])
    entries[4] = (b"otra.events.DD05-x", entries[4][1])
    problems = check(list(enumerate(entries, 1))).problems
    assert [(p.kind, p.sequence) for p in problems] == [
        (RecordProblemKind.INVALID_RECORD, 2),
        (RecordProblemKind.INVALID_RECORD, 5),
    ]


def reader_accepts(subject: bytes, data: bytes) -> bool:
    try:
        records.decode_notifications(data, subject, PREFIX)
    except InvalidRecordError:
        return False
    return True


@settings(max_examples=400)
@given(
    st.lists(st.integers(1, 5), min_size=1, max_size=3, unique=True),
    st.booleans(),
    st.integers(0, 10_000),
    st.integers(0, 7),
    st.sampled_from(["flip", "cut", "extend"]),
)
def test_the_checker_refuses_exactly_what_the_reader_refuses(
    versions: list[int], uuid_id: bool, position: int, bit: int, how: str
) -> None:
    """The checker's lean parser and the event store's reader (``decode_notifications``) agree
    on every damaged events record: one refuses it if and only if the other does."""
    subject, data = events_record(2, A if uuid_id else "DD05-x", sorted(versions))
    at = position % len(data)
    if how == "flip":
        damaged = data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1 :]
    elif how == "cut":
        damaged = data[:at]
    else:
        damaged = data + bytes([bit])
    checker = RecordChecker()
    checker.check(1, *events_record(1, B, [1]))
    checker.check(2, subject, damaged)
    invalid = any(p.kind is RecordProblemKind.INVALID_RECORD for p in checker.problems)
    assert invalid == (not reader_accepts(subject, damaged))


LOOKALIKE = "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"  # a plain name as long as a UUID's text
C = UUID(int=3, version=4)
TWIN = str(C)  # a plain name that is a UUID's text: its subject is C's


def single_event_ledger() -> list[tuple[bytes, bytes]]:
    """The usual ledger (one event per record, UUID aggregates) with the unusual mixed in."""
    out: list[tuple[bytes, bytes]] = []
    versions: dict[UUID | str, int] = {A: 0, B: 0, C: 0, LOOKALIKE: 0}
    order: list[UUID | str] = [A, B, A, C, A, LOOKALIKE, B, TWIN, A, B, C, B, A, LOOKALIKE, A]
    for i, aggregate in enumerate(order, 1):
        key = C if aggregate == TWIN else aggregate  # one subject, one line of versions
        versions[key] += 1
        out.append(events_record(i, aggregate, [versions[key]]))
    out.insert(9, tracking_record(10, "otra", 3))  # shares id 10 with the next entry
    out.append(events_record(len(order) + 1, B, [versions[B] + 1, versions[B] + 2]))
    out.append(events_record(len(order) + 3, A, [versions[A] + 1]))
    return out


def test_the_single_event_ledger_is_honest() -> None:
    """The ledger the batch check is compared on has no problem, entry by entry or batched,
    whichever way it is cut into batches."""
    entries = list(enumerate(single_event_ledger(), 1))
    assert check(entries).problems == []
    triples = [(s, subj, d) for s, (subj, d) in entries]
    for cut in range(len(triples) + 1):
        batched = RecordChecker()
        batched.check_batch(triples[:cut])
        batched.check_batch(triples[cut:])
        assert batched.problems == []
        assert batched.entries == len(triples)


@settings(max_examples=400)
@given(
    st.sampled_from(
        [
            "none",
            "flip",
            "swap",
            "delete",
            "duplicate",
            "subject",
            "uuid",
            "twin",
            "version",
            "count",
            "id kind",
            "topic",
        ]
    ),
    st.integers(0, 100),
    st.integers(0, 10_000),
    st.integers(0, 7),
    st.lists(st.integers(0, 25), max_size=4),
)
def test_the_batch_check_finds_what_the_entry_check_finds(
    how: str, index: int, position: int, bit: int, cuts: list[int]
) -> None:
    """``check_batch`` (the verifier's inlined path) reports the same problems, in the same
    order, as ``check`` entry by entry, and returns each entry's Merkle leaf hash, whatever
    single tampering the ledger underwent (a flipped bit, swapped, deleted or repeated entries,
    a record moved to another aggregate's subject, an id that only looks like a UUID, a UUID
    record moved onto a plain name's subject or the other way, a version bumped, an event
    count or the kind of id changed, a topic that is not UTF-8) and however
    the entries are cut into batches; and it goes on in the same state (the same findings on
    the entries that follow)."""
    entries = list(enumerate(single_event_ledger(), 1))
    at = index % len(entries)
    seq, (subject, data) = entries[at]
    if how == "flip":
        pos = position % len(data)
        entries[at] = (
            seq,
            (subject, data[:pos] + bytes([data[pos] ^ (1 << bit)]) + data[pos + 1 :]),
        )
    elif how == "swap" and at + 1 < len(entries):
        entries[at], entries[at + 1] = (seq, entries[at + 1][1]), (seq + 1, entries[at][1])
    elif how == "delete":
        del entries[at]
    elif how == "duplicate":
        entries.insert(at, (seq, (subject, data)))
    elif how == "subject":
        entries[at] = (seq, (entries[(at + 1) % len(entries)][1][0], data))
    elif how == "uuid":  # a plain name's record turned into one that claims a UUID id
        plain = b"\x00\x24\x00" + LOOKALIKE.encode()
        entries[at] = (seq, (subject, data.replace(plain, b"\x01" + plain[1:])))
    elif how == "twin":  # C's records and TWIN's (one subject) swap their kind of id
        uuid_id, plain_id = b"\x01\x24\x00" + TWIN.encode(), b"\x00\x24\x00" + TWIN.encode()
        swapped = data.replace(uuid_id, b"\x02").replace(plain_id, uuid_id)
        entries[at] = (seq, (subject, swapped.replace(b"\x02", plain_id)))
    elif how == "version":  # the first event's version (single-event records) one higher
        head = records.HEAD_SIZE + 3 + 36 + 4
        if len(data) > head + 8 and data[records.HEAD_SIZE] == 1:
            version = int.from_bytes(data[head : head + 8], "little", signed=True)
            bumped = (version + 1 + bit).to_bytes(8, "little", signed=True)
            entries[at] = (seq, (subject, data[:head] + bumped + data[head + 8 :]))
    elif how == "count":  # a single-event record that claims none, or more than one
        at_count = records.HEAD_SIZE + 3 + 36
        if data[records.HEAD_SIZE] == 1:
            claimed = (bit % 3).to_bytes(4, "little") if bit % 3 != 1 else b"\x01\x00\x00\x01"
            entries[at] = (seq, (subject, data[:at_count] + claimed + data[at_count + 4 :]))
    elif how == "id kind":  # an unknown kind of id, or a plain name's, or a length off by one
        at_id = records.HEAD_SIZE
        forged = [b"\x02\x24\x00", b"\x00\x24\x00", b"\x01\x23\x00", b"\x01\x25\x00"][bit % 4]
        entries[at] = (seq, (subject, data[:at_id] + forged + data[at_id + 3 :]))
    elif how == "topic":  # a topic that is not UTF-8
        at_topic = records.HEAD_SIZE + 3 + 36 + 4 + 14
        if data[records.HEAD_SIZE] == 1 and len(data) > at_topic:
            entries[at] = (seq, (subject, data[:at_topic] + b"\xff" + data[at_topic + 1 :]))
    last = entries[-1][0]
    entries += [(last + 1 + i, e) for i, e in enumerate(single_event_ledger())]  # and more
    one_by_one = check(entries)
    batched = RecordChecker()
    triples = [(s, subj, d) for s, (subj, d) in entries]
    hashes: list[bytes] = []
    start = 0
    for cut in sorted({min(c, len(triples)) for c in cuts} | {len(triples)}):
        hashes += batched.check_batch(triples[start:cut])
        start = cut
    assert batched.problems == one_by_one.problems
    assert batched.entries == one_by_one.entries
    assert hashes == [leaf_hash(subj, d) for _, subj, d in triples]
    assert hashes == [merkle_leaf_hash(leaf_bytes(subj, d)) for _, subj, d in triples]


def test_a_hole_that_keeps_the_ids_following_on_still_excuses_a_version_jump() -> None:
    """A deleted tracking record leaves a hole in the sequences but none in the notification ids
    (it holds none of its own): the batch check notices the hole as the entry check does, and
    excuses an aggregate's version jump after it, put down to the missing entries."""
    ledger = single_event_ledger()
    entries = list(enumerate(ledger, 1))
    del entries[9]  # the tracking record
    a_next = [e for e in entries if e[1][0] == PREFIX + str(A).encode()][-1]
    last_seq, (_, last_data) = entries[-1]
    first_id = int.from_bytes(last_data[5:13], "little") + 1
    version = int.from_bytes(a_next[1][1][56:64], "little") + 5  # A jumps forward
    entries.append((last_seq + 1, events_record(first_id, A, [version])))
    assert check(entries).problems == []
    batched = RecordChecker()
    batched.check_batch([(s, subj, d) for s, (subj, d) in entries])
    assert batched.problems == []
    entries[-1] = (last_seq + 1, events_record(first_id, A, [1]))  # going back is still wrong
    batched = RecordChecker()
    batched.check_batch([(s, subj, d) for s, (subj, d) in entries])
    assert [(p.kind, p.sequence) for p in batched.problems] == [
        (RecordProblemKind.VERSION_ORDER, last_seq + 1)
    ]
    assert batched.problems == check(entries).problems


def test_a_name_that_looks_like_a_uuid_is_not_taken_for_one() -> None:
    """A record that claims a UUID id under the subject of a plain name of the same text is
    refused, even after that subject carried valid records (the batch check's shortcut)."""
    ledger = [events_record(1, LOOKALIKE, [1]), events_record(2, A, [2])]
    data = ledger[1][1]
    forged = data.replace(str(A).encode(), LOOKALIKE.encode())
    checker = RecordChecker()
    checker.check_batch([(1, *ledger[0]), (2, PREFIX + LOOKALIKE.encode(), forged)])
    assert [(p.kind, p.sequence) for p in checker.problems] == [
        (RecordProblemKind.INVALID_RECORD, 2)
    ]
