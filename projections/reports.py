"""The compliance reports: pure functions of the view, the instant and the policy.

A report is a :class:`Report`: ``rows`` (the items of ``--formato json``, with the command line's
keys; Python values: instants are UTC ``datetime``), and a ``summary`` for the human formats
(verdicts, distributions, chart data). :func:`load_report` is the single entry point the command
service calls; it enforces the viewer's :class:`Scope` before reading anything::

    report = load_report("cumplimiento", Scope("titular", "DD05"), ReportFilter(), database=path)

Who sees what (6.IX, 8.C; the roles of :mod:`projections.scope`):

- ``coadministrador`` and ``secretaria``: every report, every district;
- ``titular``: every report, of their own district only;
- ``administrador``: ``cumplimiento`` and ``rotaciones`` of their own district only, with people
  shown by name and nothing else about them (no devices, purposes or free text).

Anything else raises :class:`~projections.errors.ReportScopeError`.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, cast, get_args

from events.domain import DistrictId, Policy
from projections.business_time import business_hours
from projections.errors import ReportScopeError, UnknownReportError
from projections.model import (
    AccountRow,
    DistrictRow,
    ExceptionRow,
    IncidentRow,
    ObligationRow,
    ViewData,
    open_database,
    read_view,
)
from projections.names import PersonNames
from projections.scope import Role, Scope, may_request, visible_district

__all__ = [
    "READ_FINDINGS",
    "REPORT_KINDS",
    "Report",
    "ReportFilter",
    "ReportKind",
    "Role",
    "Scope",
    "build_report",
    "check_scope",
    "load_report",
    "obligation_state",
]

ReportKind = Literal[
    "cumplimiento", "rotaciones", "exposicion", "cambios", "incidentes", "lecturas"
]
REPORT_KINDS: Final = cast(tuple[ReportKind, ...], get_args(ReportKind))

TITLES: Final[dict[ReportKind, str]] = {
    "cumplimiento": "Cumplimiento por Dirección Distrital",
    "rotaciones": "Obligaciones de cambio de contraseña (6.X)",
    "exposicion": "Exposición de credenciales desde su última rotación",
    "cambios": "Solicitudes de cambio de configuración (6.XI, 11.1)",
    "incidentes": "Bitácora de incidentes (8.C, 9.XVIII)",
    "lecturas": (
        "Lecturas fuera de horario o desde equipos no registrados (8.A, 8.B) y de datos de "
        "contacto (6.VII)"
    ),
}

_ALL_ROLES: Final = frozenset({"coadministrador", "secretaria", "titular"})
ALLOWED: Final[dict[ReportKind, frozenset[str]]] = {
    "cumplimiento": _ALL_ROLES | {"administrador"},
    "rotaciones": _ALL_ROLES | {"administrador"},
    "exposicion": _ALL_ROLES,
    "cambios": _ALL_ROLES,
    "incidentes": _ALL_ROLES,
    "lecturas": _ALL_ROLES,
}

_PARTS: Final[dict[ReportKind, frozenset[str]]] = {
    "cumplimiento": frozenset(
        {"districts", "accounts", "obligations", "requests", "incidents", "exceptions"}
    ),
    "rotaciones": frozenset({"obligations"}),
    "exposicion": frozenset({"districts", "accounts", "exposure"}),
    "cambios": frozenset({"requests"}),
    "incidentes": frozenset({"incidents"}),
    "lecturas": frozenset({"reads"}),
}


@dataclass(frozen=True)
class ReportFilter:
    """Optional narrowing: one district, and a period on each row's main instant."""

    district: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.district is not None:
            object.__setattr__(self, "district", str(DistrictId.parse(self.district)))


@dataclass
class Report:
    """A built report: its rows (the JSON items) and what the human formats add."""

    kind: ReportKind
    title: str
    generated_at: datetime
    position: int
    district: str | None
    rows: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)
    projection_errors: int = 0


def check_scope(kind: str, scope: Scope, filters: ReportFilter) -> tuple[ReportKind, str | None]:
    """The report kind and the district the viewer may see with these filters (None: all);
    raises :class:`ReportScopeError` or :class:`UnknownReportError`."""
    if kind not in REPORT_KINDS:
        raise UnknownReportError(kind)
    report: ReportKind = kind
    if scope.role not in ALLOWED[report]:
        raise ReportScopeError(scope.role, report, filters.district or scope.district)
    if not may_request(scope, filters.district):
        raise ReportScopeError(scope.role, report, filters.district)
    return report, visible_district(scope, filters.district)


# --- shared helpers ---------------------------------------------------------------------------


ObligationState = Literal["abierta", "vencida", "cumplida", "cumplida_tarde", "retirada"]


def obligation_state(obligation: ObligationRow, as_of: datetime) -> ObligationState:
    """6.X: an obligation's state at ``as_of``."""
    if obligation.withdrawn_at is not None:
        return "retirada"
    if obligation.closed_at is not None:
        return "cumplida" if obligation.closed_at <= obligation.deadline else "cumplida_tarde"
    return "abierta" if as_of <= obligation.deadline else "vencida"


def _in_period(at: datetime | None, filters: ReportFilter) -> bool:
    if at is None:
        return True
    if filters.since is not None and at < filters.since:
        return False
    return filters.until is None or at <= filters.until


def _hours(value: float) -> float:
    return round(value, 2)


def _channel(kind: str, reference: str, dated: str | None) -> str:
    text = f"{kind} {reference}"
    return f"{text} ({dated})" if dated else text


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def _distribution(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "mediana": None, "p90": None, "maximo": None}
    return {
        "n": len(values),
        "mediana": _hours(statistics.median(values)),
        "p90": _hours(_percentile(values, 90)),
        "maximo": _hours(max(values)),
    }


# --- rotaciones ---------------------------------------------------------------------------------


def _rotation_rows(
    data: ViewData, as_of: datetime, policy: Policy, names: PersonNames, filters: ReportFilter
) -> list[dict[str, Any]]:
    rows = []
    for o in data.obligations:
        if not _in_period(o.opened_at, filters):
            continue
        state = obligation_state(o, as_of)
        end = o.closed_at or o.withdrawn_at or as_of
        late_from = o.deadline if state in ("vencida", "cumplida_tarde") else None
        rows.append(
            {
                "obligacion": o.obligation_id,
                "cuenta": o.account,
                "distrito": o.district,
                "motivo": o.cause,
                "abierta": o.opened_at,
                "vence": o.deadline,
                "cerrada": o.closed_at,
                "cerrada_por": names.name(o.closed_by),
                "version": o.closed_by_version,
                "estado": state,
                "retirada": o.withdrawn_at,
                "saliente": names.name(o.outgoing_holder_id),
                "entrante": names.name(o.incoming_holder_id),
                "horas_habiles": _hours(business_hours(policy, o.opened_at, end)),
                "horas_habiles_de_retraso": (
                    _hours(business_hours(policy, late_from, end)) if late_from else 0.0
                ),
            }
        )
    return rows


def _rotation_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    per_district: dict[str, dict[str, Any]] = {}
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["distrito"]].append(row)
    for district, items in sorted(grouped.items()):
        states = Counter(r["estado"] for r in items)
        closed = [
            r["horas_habiles"] for r in items if r["estado"] in ("cumplida", "cumplida_tarde")
        ]
        decided = states["cumplida"] + states["cumplida_tarde"] + states["vencida"]
        per_district[district] = {
            "estados": dict(states),
            "tiempo_de_rotacion": _distribution(closed),
            "a_tiempo": (states["cumplida"] / decided) if decided else None,
        }
    return {"por_distrito": per_district}


# --- cumplimiento -------------------------------------------------------------------------------


def _open_accounts(accounts: list[AccountRow], district: str) -> list[AccountRow]:
    return [a for a in accounts if a.district == district and a.closed_at is None]


def _verdict(
    district: DistrictRow,
    accounts: list[AccountRow],
    overdue: int,
    unnotified: int,
) -> tuple[list[str], str]:
    reasons: list[str] = []
    if overdue:
        reasons.append(
            f"{overdue} obligación{'es' if overdue != 1 else ''} de cambio de contraseña vencida"
            f"{'s' if overdue != 1 else ''} (6.X)"
        )
    if unnotified:
        reasons.append(
            f"{unnotified} incidente{'s' if unnotified != 1 else ''} sin notificar en plazo a la "
            "Secretaría Ejecutiva (8.C)"
        )
    violating = [a.account for a in accounts if a.violations]
    if violating:
        reasons.append(f"cuentas fuera de política: {', '.join(violating)} (10.V–VIII, 11.1.a)")
    if accounts and district.administrator_id is None:
        reasons.append("sin persona administradora designada (6.VII)")
    return reasons, "cumple" if not reasons else "no_cumple"


def _compliance(
    data: ViewData, as_of: datetime, policy: Policy, names: PersonNames, admin_view: bool
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    obligations: dict[str, list[ObligationRow]] = defaultdict(list)
    for o in data.obligations:
        obligations[o.district].append(o)
    incidents: dict[str, list[IncidentRow]] = defaultdict(list)
    for i in data.incidents:
        incidents[i.district].append(i)
    open_requests = Counter(
        r.district for r in data.requests if r.status in ("solicitada", "aprobada")
    )
    exceptions: dict[str, list[ExceptionRow]] = defaultdict(list)
    for x in data.exceptions:
        exceptions[x.district].append(x)
    rows: list[dict[str, Any]] = []
    for d in data.districts:
        accounts = _open_accounts(data.accounts, d.code)
        states = [(o, obligation_state(o, as_of)) for o in obligations[d.code]]
        open_ones = [(o, s) for o, s in states if s in ("abierta", "vencida")]
        overdue = [o for o, s in open_ones if s == "vencida"]
        live_incidents = [i for i in incidents[d.code] if i.status not in ("cerrado", "descartado")]
        unnotified = [i for i in live_incidents if i.notified_at is None and as_of > i.notify_by]
        reasons, verdict = _verdict(d, accounts, len(overdue), len(unnotified))
        absence = None
        if d.absence_substitute_id is not None:
            absence = {
                "motivo": d.absence_reason,
                "sustituto": names.name(d.absence_substitute_id),
                "desde": d.absence_starts_on,
                "hasta": d.absence_ends_on,
                "en_curso": bool(d.absence_in_course),
            }
        rows.append(
            {
                "distrito": d.code,
                "titular": names.name(d.titular_id),
                "administrador": names.name(d.administrator_id),
                "administrador_desde": d.administrator_since,
                "en_funciones": names.name(d.holder_id),
                "ausencia": absence,
                "cuentas": [
                    {
                        "cuenta": a.account,
                        "plataforma": a.platform,
                        "usuario": a.handle,
                        "politica": "cumple" if not a.violations else "no_cumple",
                        "incumplimientos": list(a.violations),
                        "version_vigente": a.current_version,
                        "vigente_desde": a.current_since,
                        "rotacion_en_curso": a.staged_version,
                    }
                    for a in accounts
                ],
                "obligaciones_abiertas": len(open_ones),
                "obligaciones_a_tiempo": len(open_ones) - len(overdue),
                "obligaciones_vencidas": len(overdue),
                "horas_habiles_vencidas": _hours(
                    sum(business_hours(policy, o.deadline, as_of) for o in overdue)
                ),
                "cambios_abiertos": open_requests[d.code],
                "incidentes_abiertos": len(live_incidents),
                "incidentes_sin_notificar_en_plazo": len(unnotified),
                # 6.VII: designations and absences UTCSyD recorded in the titular's stead.
                "excepciones_autoridad": [
                    {
                        "accion": x.action,
                        "motivo": x.reason,
                        "via_oficial": x.channel,
                        "por": names.name(x.by_id),
                        "fecha": x.at,
                    }
                    for x in exceptions[d.code]
                ],
                "veredicto": verdict,
                "motivos": reasons,
                "resumen": f"{d.code}: "
                + ("cumple." if not reasons else "no cumple — " + "; ".join(reasons) + "."),
            }
        )
    failing = [r["distrito"] for r in rows if r["veredicto"] == "no_cumple"]
    whole = data.district is None
    # The institution's incidents (a ledger found altered, issue 16) are no district's fault:
    # they count against the Instituto, in a whole-institution report only.
    institutional = (
        [i for i in incidents[""] if i.status not in ("cerrado", "descartado")] if whole else []
    )
    institute = "cumple" if not failing and not institutional else "no_cumple"
    subject = "Instituto" if whole else f"Dirección Distrital {data.district}"
    if not rows:
        line = f"{subject}: sin direcciones distritales registradas en la bitácora."
    elif not failing:
        line = (
            f"{subject}: cumple."
            if len(rows) == 1
            else f"{subject}: cumple — las {len(rows)} direcciones distritales cumplen."
        )
    else:
        line = (
            f"{subject}: no cumple — {len(failing)} de {len(rows)} direcciones distritales no "
            f"cumplen ({', '.join(failing)})."
        )
    if institutional:
        plural = "s" if len(institutional) != 1 else ""
        line = (
            f"{subject}: no cumple — {len(institutional)} incidente{plural} de integridad de la "
            f"bitácora abierto{plural} (6.XII, 11.8); {len(failing)} de {len(rows)} direcciones "
            "distritales no cumplen."
        )
    for row in rows:
        row["veredicto_instituto"] = institute if whole else None
        if admin_view:
            row.pop("ausencia")  # 8.D, 11.7: an administrator sees names, not others' absences
    rotation_rows = _rotation_rows(data, as_of, policy, names, ReportFilter())
    summary = {
        "veredicto": institute,
        "linea": line,
        **_rotation_summary(rotation_rows),
        "incidentes_institucionales_abiertos": len(institutional),
        "incidentes_por_mes": _incidents_by_month(data.incidents, policy),
    }
    return rows, summary


# --- exposicion ---------------------------------------------------------------------------------


def _exposure(data: ViewData, names: PersonNames) -> list[dict[str, Any]]:
    seen: dict[tuple[str, int], list[tuple[datetime, str, str]]] = defaultdict(list)
    for e in data.exposure:
        seen[(e.account, e.version)].append((e.first_seen_at, e.person_id, e.how))
    coadmins = {r.person_id for r in data.roles if r.role == "coadministrador"}
    holders = {d.code: d.holder_id for d in data.districts}
    rows: list[dict[str, Any]] = []
    for a in data.accounts:
        if a.closed_at is not None:
            continue
        for version, state, since in (
            (a.current_version, "vigente", a.current_since),
            (a.staged_version, "preparada", a.staged_since),
        ):
            if version is None:
                continue
            people = seen.get((a.account, version), [])
            entitled = coadmins | {holders.get(a.district)}
            rows.append(
                {
                    "cuenta": a.account,
                    "distrito": a.district,
                    "version": version,
                    "estado": state,
                    "desde": since,
                    "personas": [names.name(p) for _, p, _ in people],
                    "sin_acceso_actual": [names.name(p) for _, p, _ in people if p not in entitled],
                    "detalle": [
                        {"persona": names.name(p), "primera_vez": at, "via": how}
                        for at, p, how in people
                    ],
                }
            )
    return rows


# --- cambios, incidentes, lecturas --------------------------------------------------------------


def _requests(data: ViewData, names: PersonNames, filters: ReportFilter) -> list[dict[str, Any]]:
    return [
        {
            "solicitud": r.request_id,
            "cuenta": r.account,
            "distrito": r.district,
            "campo": r.field,
            "via_oficial": _channel(r.channel_kind, r.channel_reference, r.channel_date),
            "estado": r.status,
            "detalle": r.detail,
            "solicitada": r.filed_at,
            "solicitada_por": names.name(r.filed_by),
            "decidida": r.decided_at,
            "decidida_por": names.name(r.decided_by),
            "motivo_decision": r.decision_reason,
            "aplicada": r.applied_at,
            "aplicada_por": names.name(r.applied_by),
            "version_rotada": r.rotation_version,
        }
        for r in data.requests
        if _in_period(r.filed_at, filters)
    ]


def _incidents(
    data: ViewData, as_of: datetime, names: PersonNames, filters: ReportFilter
) -> list[dict[str, Any]]:
    rows = []
    for i in data.incidents:
        if not _in_period(i.reported_at, filters):
            continue
        minutes = None
        if i.notified_at is not None:
            minutes = round((i.notified_at - i.reported_at).total_seconds() / 60, 1)
        rows.append(
            {
                "incidente": i.incident_id,
                # The institution's incident (the ledger's) has neither: null.
                "cuenta": i.account or None,
                "distrito": i.district or None,
                "tipo": i.incident_type,
                "estado": i.status,
                # Issue 19; an incident the service opened was detected when recorded.
                "detectado": i.detected_at or i.reported_at,
                "reportado": i.reported_at,
                "reportado_por": names.name(i.reported_by),
                "plazo_notificacion": i.notify_by,
                "notificado": i.notified_at,
                "notificado_a_tiempo": (
                    None if i.notified_on_time is None else bool(i.notified_on_time)
                ),
                "minutos_a_notificacion": minutes,
                # A false alarm dismissed before notifying owes no notification.
                "notificacion_vencida": (
                    i.notified_at is None and i.status != "descartado" and as_of > i.notify_by
                ),
                "via_notificacion": i.notified_channel,
                "contenido": i.contained_at,
                "version_rotada": i.rotation_version,
                "cerrado": i.closed_at,
                "enterado": i.acknowledged_at,
                "medidas": i.measures,
                "descartado": i.dismissed_at,
                "motivo_descarte": i.dismiss_reason,
                "descripcion": i.description,
            }
        )
    return rows


def _incidents_by_month(incidents: list[IncidentRow], policy: Policy) -> list[dict[str, Any]]:
    months: dict[str, Counter[str]] = defaultdict(Counter)
    for i in incidents:
        month = policy.local(i.reported_at).strftime("%Y-%m")
        months[month][i.incident_type] += 1
    return [{"mes": m, **dict(c)} for m, c in sorted(months.items())]


# What ``reporte lecturas`` may say of a read (its ``hallazgos``), and how people read it: the
# one table the table, HTML and CSV renderers use.
READ_FINDINGS: Final[dict[str, str]] = {
    "fuera_de_horario": "fuera de horario",  # 8.A
    "equipo_no_registrado": "equipo no registrado",  # 8.B
    "lectura_no_registrada": "lectura sin registro en la bitácora",  # OpenBao's audit log
    "no_entregada": "no entregada (el servidor de secretos no la entregó)",
    "datos_de_contacto": "datos de contacto (6.VII)",  # issue 18
}


def _reads(data: ViewData, names: PersonNames, filters: ReportFilter) -> list[dict[str, Any]]:
    rows = []
    for r in data.reads:
        if not _in_period(r.at, filters):
            continue
        findings = []
        if r.outside_working_hours:
            findings.append("fuera_de_horario")  # 8.A
        if not r.registered_device:
            findings.append("equipo_no_registrado")  # 8.B
        if r.reader_role == "no_registrada":
            findings.append("lectura_no_registrada")  # OpenBao's audit log, not the ledger
        if r.voided_reason is not None:
            # Recorded, then the secrets server refused or failed it: nothing was handed over
            # (exposure still counts it: conservative).
            findings.append("no_entregada")
        rows.append(
            {
                "fecha": r.at,
                "cuenta": r.account,
                "distrito": r.district,
                "persona": names.name(r.reader_id),
                "calidad": r.reader_role,
                "tipo": r.kind,
                "version": r.version,
                "dispositivo": r.device_id,
                "dispositivo_registrado": bool(r.registered_device),
                "fuera_de_horario": bool(r.outside_working_hours),
                "hallazgos": findings,
                "motivo": r.purpose,
                "entregada": r.voided_reason is None,
                "causa_no_entrega": r.voided_reason,
                "contacto_de": None,
            }
        )
    return rows


# Issue 18 (6.VII, 6.VIII, R9): every read of a person's contact data is shown to the
# Secretaría Ejecutiva and the UTCSyD, with the same keys as a credential read (``tipo``
# ``contacto``, no account, ``contacto_de``: whose data). Not district-bound: a titular's
# or administrator's view of the report never shows them.
_CONTACT_VIEWERS: Final = frozenset({"coadministrador", "secretaria"})


def contact_rows(
    reads: Sequence[tuple[datetime, str, str, str]],
    names: PersonNames,
    filters: ReportFilter,
    policy: Policy,
) -> list[dict[str, Any]]:
    """The rows of ``reporte lecturas`` for reads of contact data (``reads``: instant, reader
    id, subject id, purpose)."""
    rows = []
    for at, reader, subject, purpose in reads:
        if not _in_period(at, filters):
            continue
        outside = policy.is_outside_working_hours(at)
        rows.append(
            {
                "fecha": at,
                "cuenta": None,
                "distrito": None,
                "persona": names.name(reader),
                "calidad": "coadministrador",
                "tipo": "contacto",
                "version": None,
                "dispositivo": None,
                "dispositivo_registrado": None,
                "fuera_de_horario": outside,
                "hallazgos": ["datos_de_contacto", *(["fuera_de_horario"] if outside else [])],
                "motivo": purpose,
                "entregada": True,
                "causa_no_entrega": None,
                "contacto_de": names.name(subject),
            }
        )
    return rows


def add_contact_reads(
    report: Report,
    scope: Scope,
    filters: ReportFilter,
    reads: Sequence[tuple[datetime, str, str, str]],
    names: PersonNames,
    policy: Policy,
) -> None:
    """Adds the reads of contact data to ``report`` (``lecturas``) for the UTCSyD and the
    Secretaría Ejecutiva, unless it is narrowed to one district; rows in time order."""
    if report.kind != "lecturas" or scope.role not in _CONTACT_VIEWERS or report.district:
        return
    extra = contact_rows(reads, names, filters, policy)
    if not extra:
        return
    report.rows = sorted([*report.rows, *extra], key=lambda r: r["fecha"])
    report.summary["lecturas_de_contacto"] = len(extra)


# --- entry points -------------------------------------------------------------------------------


Builder = Callable[
    [ViewData, datetime, Policy, PersonNames, ReportFilter, Scope],
    tuple[list[dict[str, Any]], dict[str, Any]],
]


def _build_rotaciones(
    data: ViewData, as_of: datetime, policy: Policy, names: PersonNames, f: ReportFilter, s: Scope
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows = _rotation_rows(data, as_of, policy, names, f)
    return rows, _rotation_summary(rows)


def _build_cumplimiento(
    data: ViewData, as_of: datetime, policy: Policy, names: PersonNames, f: ReportFilter, s: Scope
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return _compliance(data, as_of, policy, names, admin_view=s.role == "administrador")


def _build_exposicion(
    data: ViewData, as_of: datetime, policy: Policy, names: PersonNames, f: ReportFilter, s: Scope
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return _exposure(data, names), {}


def _build_cambios(
    data: ViewData, as_of: datetime, policy: Policy, names: PersonNames, f: ReportFilter, s: Scope
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows = _requests(data, names, f)
    return rows, {"estados": dict(Counter(r["estado"] for r in rows))}


def _build_incidentes(
    data: ViewData, as_of: datetime, policy: Policy, names: PersonNames, f: ReportFilter, s: Scope
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows = _incidents(data, as_of, names, f)
    notified = [r for r in rows if r["notificado_a_tiempo"] is not None]
    on_time = sum(1 for r in notified if r["notificado_a_tiempo"])
    shown = [i for i in data.incidents if _in_period(i.reported_at, f)]
    return rows, {
        "incidentes_por_mes": _incidents_by_month(shown, policy),
        "notificados_a_tiempo": on_time,
        "notificados": len(notified),
        "abiertos": sum(1 for r in rows if r["estado"] not in ("cerrado", "descartado")),
    }


def _build_lecturas(
    data: ViewData, as_of: datetime, policy: Policy, names: PersonNames, f: ReportFilter, s: Scope
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows = _reads(data, names, f)
    return rows, {
        "fuera_de_horario": sum(1 for r in rows if r["fuera_de_horario"]),
        "equipo_no_registrado": sum(1 for r in rows if r["dispositivo_registrado"] is False),
        "lecturas_de_contacto": 0,
    }


BUILDERS: Final[dict[ReportKind, Builder]] = {
    "cumplimiento": _build_cumplimiento,
    "rotaciones": _build_rotaciones,
    "exposicion": _build_exposicion,
    "cambios": _build_cambios,
    "incidentes": _build_incidentes,
    "lecturas": _build_lecturas,
}


def build_report(
    kind: str,
    data: ViewData,
    scope: Scope,
    filters: ReportFilter,
    *,
    as_of: datetime,
    policy: Policy,
    names: PersonNames,
) -> Report:
    """The report ``kind`` for ``scope`` from ``data`` (already read for the allowed district),
    as it stands at ``as_of``. Pure: the same inputs give the same report."""
    report, district = check_scope(kind, scope, filters)
    if data.district != district and district is not None:
        data = _only(data, district)
    rows, summary = BUILDERS[report](data, as_of, policy, names, filters, scope)
    return Report(
        kind=report,
        title=TITLES[report],
        generated_at=as_of,
        position=data.position,
        district=district,
        rows=rows,
        summary=summary,
        projection_errors=len(data.errors),
    )


def _only(data: ViewData, district: str) -> ViewData:
    return replace(
        data,
        district=district,
        districts=[d for d in data.districts if d.code == district],
        accounts=[a for a in data.accounts if a.district == district],
        exposure=[e for e in data.exposure if e.account.startswith(district + "-")],
        obligations=[o for o in data.obligations if o.district == district],
        reads=[r for r in data.reads if r.district == district],
        requests=[r for r in data.requests if r.district == district],
        incidents=[i for i in data.incidents if i.district == district],
        exceptions=[x for x in data.exceptions if x.district == district],
    )


def load_report(
    kind: str,
    scope: Scope,
    filters: ReportFilter,
    *,
    database: Path,
    policy: Policy | None = None,
    names: PersonNames | None = None,
    now: datetime | None = None,
) -> Report:
    """Reads the projection database at ``database`` and builds report ``kind`` for ``scope``.

    The scope is checked before the database is opened. ``now`` (default: the clock) is the
    instant the report is "as of" (what is overdue); ``names`` maps person ids to user names.
    """
    from projections.contact_reads import contact_read_rows
    from projections.controls import annotate_compliance, recertification_status

    report, district = check_scope(kind, scope, filters)
    as_of = (now or datetime.now(UTC)).astimezone(UTC)
    with open_database(database) as conn:
        data = read_view(conn, district, _PARTS[report])
        if names is None:
            rows = conn.execute("SELECT username FROM people WHERE username IS NOT NULL")
            names = PersonNames(str(row[0]) for row in rows)
        recertification = recertification_status(conn, as_of) if report == "cumplimiento" else {}
        contacts = contact_read_rows(conn) if report == "lecturas" else []
    built = build_report(
        report,
        data,
        scope,
        filters,
        as_of=as_of,
        policy=policy or Policy(),
        names=names or PersonNames(),
    )
    if report == "cumplimiento":
        annotate_compliance(built, recertification, names or PersonNames())  # issue 19
    if report == "lecturas":  # issue 18: reads of contact data
        add_contact_reads(
            built, scope, filters, contacts, names or PersonNames(), policy or Policy()
        )
    return built
