"""Commands the web view needs that the command line does locally (issue 20), as the service
runs them (see :mod:`custody.service.commands`).

``bitacora.exportar``: the ledger's export bundle (``custodia bitacora exportar``), for people
who have no NATS credentials of their own (the web view reads the ledger only through the
service). Scoped like the command line: the Secretaría Ejecutiva and coadministrators (CLI.md).

A NATS reply is at most ``max_payload`` (1 MiB), so the material comes in pages: each reply
carries the checkpoints and then the entries from where the previous page stopped, up to
:data:`PAGE_BYTES`. The first page fixes the ledger's extent (``hasta``: its last sequence then,
``puntos``: its checkpoint count then); the caller sends them back with every later page, so
every page describes the same ledger (the streams only grow; an entry never changes unless it
is tampered with, which the bundle's verification then shows). The caller writes the bundle
with :func:`events.ledger_verify.write_bundle`, the same writer as the command line's.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from custody.app.custodia import Actor, Custodia, ScopeError
from custody.service.server import Call
from events.domain import ValidationError

# Raw bytes of checkpoints and entries per reply: base64 makes it 4/3 of that, well under
# NATS's 1 MiB ``max_payload`` with the JSON around it.
PAGE_BYTES = 384 * 1024
EXPORT_ROLES = frozenset({"coadministrador", "secretaria"})
# How long the first page waits for a checkpoint covering the last entry (the service signs
# about a second after a write); well within the web view's wait for an answer.
SIGNED_WAIT = 8.0


def _count(args: Mapping[str, Any], name: str, *, minimum: int) -> int | None:
    value = args.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(name, f"must be an integer of at least {minimum}")
    return value


def export_page(custodia: Custodia, call: Call) -> dict[str, Any]:
    """One page of the export bundle's material for ``call``'s caller (see the module)."""
    from custody.ledger.audit import DEFAULT_KEY_NAME, ledger_keyring, signed_checkpoints
    from custody.ledger.names import LedgerNames
    from custody.ledger.nats_io import read_entries, read_subject, stream_last_sequence
    from events.checkpoint import PublicKeyring
    from events.leaves import leaf_bytes

    actor = Actor(call.caller.username, call.caller.token)
    person = custodia.person(actor.username)
    if not EXPORT_ROLES & set(dict(person.roles)):
        raise ScopeError(actor.username, "*")
    first_event = _count(call.args, "evento", minimum=1) or 1
    first_note = _count(call.args, "punto", minimum=0) or 0
    names = LedgerNames.for_app("custodia", "")
    conn = custodia.app.factory.connection  # type: ignore[attr-defined]
    fixed_notes = _count(call.args, "puntos", minimum=0)
    last = _count(call.args, "hasta", minimum=0)
    if last is None:
        # The first page fixes the extent: the last entry now, and (as the command line's
        # export does) the checkpoints once one covers it, so the bundle verifies to its end.
        last = stream_last_sequence(conn, names.events_stream)
        notes, _ = signed_checkpoints(conn, names, last, SIGNED_WAIT)
    else:
        notes = [d for _, d in read_subject(conn, names.checkpoints_stream, names.notes_subject)]
    note_count = len(notes) if fixed_notes is None else min(fixed_notes, len(notes))
    keyring = ledger_keyring(conn, names) or PublicKeyring(DEFAULT_KEY_NAME, {})

    budget = PAGE_BYTES
    page_notes: list[str] = []
    next_note: int | None = first_note if first_note < note_count else None
    while next_note is not None and (budget > 0 or not page_notes):
        data = notes[next_note]
        page_notes.append(base64.b64encode(data).decode())
        budget -= len(data)
        next_note = next_note + 1 if next_note + 1 < note_count else None
    entries: list[list[Any]] = []
    next_event: int | None = None
    if next_note is None and first_event <= last:
        next_event = first_event
        for batch in read_entries(conn, names.events_stream, start=first_event, stop=last):
            for seq, subject, data in batch:
                if budget <= 0 and (entries or page_notes):
                    break
                leaf = leaf_bytes(subject, data)
                entries.append([seq, base64.b64encode(leaf).decode()])
                budget -= len(leaf)
                next_event = seq + 1
            else:
                continue
            break
        else:
            next_event = None  # every entry up to ``hasta`` (deleted ones are simply absent)
        if next_event is not None and next_event > last:
            next_event = None
    elif next_note is not None:
        next_event = first_event if first_event <= last else None
    return {
        "origen": names.origin,
        "clave_publica": keyring.to_json(),
        "hasta": last,
        "puntos": note_count,
        "puntos_de_control": page_notes,
        "eventos": entries,
        "siguiente_punto": next_note,
        "siguiente_evento": next_event,
    }


def web_handlers(custodia: Custodia) -> dict[str, Callable[[Call], Any]]:
    """The handlers of the web view's commands (specs in :mod:`custody.service.spec`)."""
    return {"bitacora.exportar": lambda c: export_page(custodia, c)}
