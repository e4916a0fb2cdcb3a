"""Spanish for the ledger: what each verification finding means, and the ledger's errors.

Findings come from :mod:`events.ledger_verify` (Merkle and checkpoint checks) and
:mod:`events.leaves` (record checks); both are rendered here into the items of
``custodia bitacora verificar --json``::

    {"tipo": ..., "evento": n | null, "desde": a | null, "hasta": b | null,
     "punto_de_control": k | null, "fuente": "bitacora" | "testigo" | "openbao",
     "detalle": "..."}

``evento`` is the ledger entry (stream sequence) known to be bad, ``desde``..``hasta`` the range
the fault lies in when only a range is known, ``punto_de_control`` the 1-based position of the
checkpoint in the order it was stored (in the ledger, or in the witness file); for ``openbao``
(the head and witnesses anchored in OpenBao) #1 is the anchored head, then the witnesses by size.

Errors are registered into :mod:`cli.messages` when :mod:`cli.bitacora_cmds` is imported. This
module imports nothing heavy: problem objects are read by attribute.
"""

from __future__ import annotations

from typing import Any

from cli.messages import (
    EXIT_DOMAIN,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    MESSAGES,
    register,
)

EXIT_TAMPERED = EXIT_DOMAIN  # 1: the ledger (or a file claiming to be part of it) is altered
EXIT_UNSIGNED = 8  # a bundle whose last events no signed checkpoint covers: not proven

# Problem kinds of events.ledger_verify.ProblemKind and events.leaves.RecordProblemKind.
TIPOS: dict[str, str] = {
    "gap": "eventos_borrados",
    "out_of_order": "fuera_de_orden",
    "missing_event": "final_borrado",
    "root_mismatch": "raiz_distinta",
    "truncated": "truncada",
    "bad_signature": "firma_invalida",
    "unknown_key": "clave_desconocida",
    "malformed_checkpoint": "punto_de_control_ilegible",
    "wrong_origin": "otra_bitacora",
    "inconsistent_checkpoints": "puntos_de_control_contradictorios",
    "shorter_than_reference": "mas_corta_que_la_referencia",
    "malformed_leaf": "dato_ilegible",
    "invalid_record": "registro_invalido",
    "numbering": "numeracion_rota",
    "version_order": "version_fuera_de_orden",
}


def _attr(obj: Any, name: str) -> Any:
    return getattr(obj, name, None)


def _cp(index: int | None, source: str | None) -> str:
    if index is None:
        return "un punto de control"
    where = {"witness": " del testigo", "anchor": " guardado en OpenBao"}.get(source or "", "")
    return f"el punto de control #{index + 1}{where}"


def _cap(text: str) -> str:
    """First letter upper-case, the rest as is (``str.capitalize`` would lower «OpenBao»)."""
    return text[:1].upper() + text[1:]


def _range(first: int | None, last: int | None) -> str:
    if first is None:
        return "algún evento"
    if last is None or last == first:
        return f"el evento #{first}"
    return f"algún evento entre el #{first} y el #{last}"


def ledger_problem_detail(problem: Any) -> str:
    """Spanish text of an :class:`events.ledger_verify.Problem`."""
    kind = str(problem.kind)
    nid, first, last = problem.notification_id, problem.first_id, problem.last_id
    cp = _cp(problem.checkpoint_index, problem.checkpoint_source)
    size = problem.checkpoint_size
    if kind == "gap":
        if first == last:
            return f"Falta el evento #{first}: la bitácora pasa del #{first - 1} al #{first + 1}."
        return f"Faltan los eventos #{first} a #{last}: fueron borrados."
    if kind == "out_of_order":
        return f"El evento #{nid} aparece fuera de orden (repetido o hacia atrás)."
    if kind == "missing_event":
        return (
            f"El servidor registra eventos hasta el #{last}, pero la bitácora termina en el "
            f"#{(first or 1) - 1}: se borraron los eventos del #{first} al #{last}."
        )
    if kind == "root_mismatch":
        text = (
            f"{_cap(cp)} (firma {size} eventos) no coincide con la bitácora: "
            f"{_range(first, last)} fue alterado, reordenado, insertado o eliminado."
        )
        if nid is not None:
            text += f" El primero distinto es el evento #{nid} (según la copia de referencia)."
        return text
    if kind == "truncated":
        return (
            f"{_cap(cp)} firma {size} eventos, pero la bitácora tiene menos: "
            f"se eliminaron los eventos desde el #{nid}."
        )
    if kind == "shorter_than_reference":
        return (
            f"La copia de referencia tiene {last} eventos, pero la bitácora solo "
            f"{(first or 1) - 1}: se eliminaron los eventos desde el #{first}."
        )
    if kind == "bad_signature":
        return f"La firma de {cp} no es válida: fue alterado o reemplazado."
    if kind == "unknown_key":
        return f"{_cap(cp)} está firmado con una clave que no está en la clave pública."
    if kind == "malformed_checkpoint":
        return f"{_cap(cp)} está dañado: no es una nota firmada válida."
    if kind == "wrong_origin":
        return f"{_cap(cp)} pertenece a otra bitácora."
    if kind == "inconsistent_checkpoints":
        other = _cp(problem.other_checkpoint_index, problem.other_checkpoint_source)
        if first is None:
            return (
                f"{_cap(cp)} no sigue a {other}: su tamaño retrocede o cambia la raíz "
                "de un tamaño ya firmado (un punto de control reemplazado o repetido)."
            )
        text = (
            f"{_cap(cp)} (firma {size} eventos) contradice a {other}, que sí coincide "
            f"con la bitácora: un punto de control reemplazado, o un pasado reescrito en "
            f"{_range(first, last)}."
        )
        if nid is not None:
            text += f" El primero distinto es el evento #{nid} (según la copia de referencia)."
        return text
    return "Problema en la bitácora."


def record_problem_detail(problem: Any) -> str:
    """Spanish text of a :class:`events.leaves.RecordProblem`."""
    kind = str(problem.kind)
    seq = problem.sequence
    if kind == "malformed_leaf":
        return f"Los datos del evento #{seq} en el paquete están dañados."
    if kind == "invalid_record":
        return (
            f"El evento #{seq} no es un registro válido de Custodia o su asunto no corresponde "
            "a su agregado: fue insertado o alterado."
        )
    if kind == "numbering":
        return (
            f"El evento #{seq} empieza en la notificación {problem.found}, se esperaba la "
            f"{problem.expected}: este evento o el anterior fue insertado, o se reordenaron o "
            "eliminaron eventos."
        )
    if kind == "version_order":
        return (
            f"El evento #{seq} trae la versión {problem.found} de su agregado, se esperaba la "
            f"{problem.expected}: eventos reordenados o insertados."
        )
    return f"Problema en el evento #{seq}."


_FUENTES = {"ledger": "bitacora", "witness": "testigo", "anchor": "openbao"}


def ledger_problem_item(problem: Any) -> dict[str, Any]:
    index = problem.checkpoint_index
    return {
        "tipo": TIPOS.get(str(problem.kind), str(problem.kind)),
        "evento": problem.notification_id,
        "desde": problem.first_id,
        "hasta": problem.last_id,
        "punto_de_control": None if index is None else index + 1,
        "fuente": _FUENTES.get(str(problem.checkpoint_source), "bitacora"),
        "detalle": ledger_problem_detail(problem),
    }


def record_problem_item(problem: Any) -> dict[str, Any]:
    return {
        "tipo": TIPOS.get(str(problem.kind), str(problem.kind)),
        "evento": problem.sequence,
        "desde": problem.sequence,
        "hasta": problem.sequence,
        "punto_de_control": None,
        "fuente": "bitacora",
        "detalle": record_problem_detail(problem),
    }


def problem_items(verdict: Any) -> list[dict[str, Any]]:
    """Every finding of a :class:`custody.ledger.audit.LedgerVerdict`, by position."""
    items = [ledger_problem_item(p) for p in verdict.report.problems]
    items += [record_problem_item(p) for p in verdict.record_problems]

    def position(item: dict[str, Any]) -> tuple[int, int]:
        where = item["evento"] if item["evento"] is not None else item["desde"]
        return (where if where is not None else 1 << 62, item["punto_de_control"] or 0)

    return sorted(items, key=position)


def first_bad(items: list[dict[str, Any]]) -> tuple[int | None, int | None]:
    """The first entry known exactly to be bad, and the first bad checkpoint of the ledger."""
    exact = [i["evento"] for i in items if i["evento"] is not None]
    checkpoints = [
        i["punto_de_control"]
        for i in items
        if i["punto_de_control"] is not None and i["fuente"] == "bitacora"
    ]
    return (min(exact) if exact else None), (min(checkpoints) if checkpoints else None)


def first_range(items: list[dict[str, Any]]) -> tuple[int, int] | None:
    """The earliest range a fault is known to lie in, unless an exact finding precedes it or
    falls inside it (then that entry is the better answer)."""
    exact = sorted(i["evento"] for i in items if i["evento"] is not None)
    ranges = [
        (i["desde"], i["hasta"])
        for i in items
        if i["evento"] is None and i["desde"] is not None and i["hasta"] is not None
    ]
    if not ranges:
        return None
    first, last = min(ranges)
    if any(e <= last for e in exact):
        return None
    return first, last


# -- errors ----------------------------------------------------------------------------------

_INVALID = "su contenido no es válido"

_BUNDLE_REASONS = (
    ("missing", "no existe"),
    ("not a custodia ledger bundle", "no es un paquete de bitácora de Custodia"),
    ("damaged file", "el archivo está dañado (no se puede descomprimir)"),
    ("no end record", "está incompleto: le falta el final"),
    ("the end record's counts", "sus cuentas finales no coinciden con su contenido"),
    ("data after the end record", "tiene datos después del final"),
    ("a line is not", "una línea no es JSON válido"),
    (
        "a line longer than",
        "tiene una línea demasiado larga (¿un archivo armado para agotar la memoria?)",
    ),
    ("nests too deeply", "una línea anida demasiado su JSON"),
    ("bad keyring", "la clave pública que incluye no es válida"),
    ("events can be read only once", "no se pudo leer"),
)

_PROOF_REASONS = (
    ("malformed event proof", "el documento no es una prueba de inclusión de Custodia"),
    ("does not lead to the root", "el camino no conduce a la raíz firmada"),
    ("too long", "el camino tiene demasiados elementos"),
    ("too short", "el camino tiene muy pocos elementos"),
    ("not in [0", "la posición del evento no está en el árbol firmado"),
    ("does not hold notification", "el evento probado no contiene esa notificación"),
    ("not a ledger entry", "los datos probados no son un evento de la bitácora"),
    ("is missing", "a la bitácora le falta un evento: ejecute «custodia bitacora verificar»"),
    ("does not match checkpoint", "la bitácora no coincide con el punto de control"),
    ("is not leaf", "la bitácora no coincide con el punto de control"),
)


def _translate(reason: str, table: tuple[tuple[str, str], ...], default: str) -> str:
    for fragment, spanish in table:
        if fragment in reason:
            return spanish
    return default


def _keyring_reason(reason: str) -> str:
    if reason == "missing":
        return "no existe"
    if reason.startswith("unreadable"):
        return "no se puede leer"
    if reason == "not JSON":
        return "no es JSON"
    if reason == "no key in the file":
        return "no contiene ninguna clave"
    return "no es un archivo de clave pública de la bitácora"


def _when(checkpoint: Any) -> str:
    stamp = _attr(checkpoint, "timestamp")
    return stamp.strftime("%Y-%m-%d %H:%M UTC") if stamp is not None else "?"


def _witness_conflict(e: Any) -> str:
    seen, new = _attr(e, "seen"), _attr(e, "new")
    return (
        f"ALTERADA: el punto de control de {_attr(new, 'size')} eventos contradice el de "
        f"{_attr(seen, 'size')} eventos que el testigo vio el {_when(seen)}: la bitácora "
        "reescribió o recortó su pasado."
    )


def _diverged(e: Any) -> str:
    where = f" (desde el evento #{e.sequence})" if _attr(e, "sequence") else ""
    return (
        f"ALTERADA: la bitácora no coincide con lo que se firmó{where}. "
        "Ejecute «custodia bitacora verificar» para ver el detalle."
    )


def _entry_not_found(e: Any) -> str:
    covered = _attr(e, "covered")
    what = "La notificación" if _attr(e, "what") == "notification" else "El evento"
    tail = f" (el último punto de control cubre {covered} eventos)" if covered is not None else ""
    return (
        f"{what} #{_attr(e, 'value')} no está en la bitácora o aún no lo cubre un punto de "
        f"control{tail}."
    )


ERROR_MESSAGES: dict[str, tuple[int, Any]] = {
    "LedgerError": (EXIT_TAMPERED, lambda e: "La verificación de la bitácora falló."),
    "BundleError": (
        EXIT_TAMPERED,
        lambda e: (
            f"El paquete {_attr(e, 'path')} no se puede verificar: "
            f"{_translate(str(_attr(e, 'reason') or ''), _BUNDLE_REASONS, _INVALID)}."
        ),
    ),
    "InvalidProofError": (
        EXIT_TAMPERED,
        lambda e: (
            "La prueba de inclusión NO es válida: "
            f"{_translate(str(_attr(e, 'reason') or ''), _PROOF_REASONS, 'no se verifica')}."
        ),
    ),
    "CheckpointError": (EXIT_TAMPERED, lambda e: "El punto de control no es válido."),
    "MalformedCheckpointError": (
        EXIT_TAMPERED,
        lambda e: "El punto de control está dañado: no es una nota firmada válida.",
    ),
    "BadSignatureError": (
        EXIT_TAMPERED,
        lambda e: (
            "La firma del punto de control no es válida con la clave "
            f"{_attr(e, 'key_name')}:v{_attr(e, 'key_version')}: fue alterado o reemplazado."
        ),
    ),
    "UnknownKeyError": (
        EXIT_TAMPERED,
        lambda e: (
            f"El punto de control está firmado con la clave {_attr(e, 'key_name')}:"
            f"v{_attr(e, 'key_version')}, que no está en la clave pública dada."
        ),
    ),
    "WrongOriginError": (
        EXIT_TAMPERED,
        lambda e: f"El punto de control pertenece a otra bitácora ({_attr(e, 'origin')}).",
    ),
    "WitnessConflictError": (EXIT_TAMPERED, _witness_conflict),
    "LedgerDivergedError": (EXIT_TAMPERED, _diverged),
    "MalformedLeafError": (
        EXIT_TAMPERED,
        lambda e: "Los datos de un evento no tienen el formato de la bitácora.",
    ),
    "KeyringFileError": (
        EXIT_USAGE,
        lambda e: (
            f"El archivo de clave pública {_attr(e, 'path')} "
            f"{_keyring_reason(str(_attr(e, 'reason') or ''))}."
        ),
    ),
    "WitnessFileError": (
        EXIT_TAMPERED,
        lambda e: (
            f"El archivo de testigo {_attr(e, 'path')} no se puede usar: es de otra bitácora, "
            "está dañado o guarda puntos de control cuya firma no es válida."
        ),
    ),
    "NoCheckpointError": (
        EXIT_NOT_FOUND,
        lambda e: (
            "La bitácora aún no tiene puntos de control firmados: el servicio publica uno "
            "cada pocos segundos mientras haya eventos nuevos."
        ),
    ),
    "EntryNotFoundError": (EXIT_NOT_FOUND, _entry_not_found),
}

# Errors of other modules the ledger commands meet; registered only if nobody did.
FALLBACK_MESSAGES: dict[str, tuple[int, Any]] = {
    "StreamNotFoundError": (
        EXIT_NOT_FOUND,
        lambda e: (
            f"No existe el flujo {_attr(e, 'stream')} en NATS: ¿se inicializó Custodia "
            "(«custodia init») y apunta CUSTODIA_NATS_URL al servidor correcto?"
        ),
    ),
}


def register_all() -> None:
    """Add the ledger's messages to :data:`cli.messages.MESSAGES` (idempotent)."""
    for name, (code, render) in ERROR_MESSAGES.items():
        register(name, code, render)
    for name, (code, render) in FALLBACK_MESSAGES.items():
        if name not in MESSAGES:
            register(name, code, render)
