"""Use cases of the institution's controls (issue 19): institutional devices (8.B), authorized
other hours and the IECM's non-working days (8.A), the policies in force, recertification
campaigns and the maximum password age.

The domain is :mod:`events.domain.controls`; this module loads and saves its aggregates through
the same :class:`~custody.app.custodia.Custodia` (ledger, locks, people) as every other use case.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

import structlog

from custody.app.custodia import Actor, ConflictError, Custodia
from custody.app.rules import calendar, file_policy, policy_now, registry
from custody.app.rules import load as _load
from events.domain import DistrictId, Person, Policy, parse_district_id
from events.domain.controls import (
    UTCSYD,
    DeviceRegistry,
    Recertification,
    RecertificationClosedError,
    WorkingCalendar,
    parse_period,
)
from events.domain.official_channel import OfficialChannel
from events.domain.person import require_coadministrator

log = structlog.get_logger("custodia.controls")

A = TypeVar("A")
_LOCK = "controles"
# A campaign's attestations are due this many days after it opens, unless ``--vence`` says.
RECERTIFICATION_DAYS = 15


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


# -- devices (8.B) --------------------------------------------------------------------------


def register_device(
    custodia: Custodia, actor: Actor, device: str, district: str, description: str
) -> dict[str, Any]:
    by = custodia.person(actor.username)
    require_coadministrator(by, "register devices")
    with custodia.ledger.lock(_LOCK):
        now = custodia.clock()
        found = registry(custodia) or DeviceRegistry.open(by=by, at=now)
        item = found.register(device, district=district, description=description, by=by, at=now)
        custodia.ledger.save(found)
    log.info("equipo_registrado", equipo=item.device_id, distrito=item.district)
    return {"equipo": item.device_id, "distrito": item.district, "descripcion": item.description}


def retire_device(custodia: Custodia, actor: Actor, device: str) -> dict[str, Any]:
    by = custodia.person(actor.username)
    require_coadministrator(by, "retire devices")
    with custodia.ledger.lock(_LOCK):
        now = custodia.clock()
        found = registry(custodia) or DeviceRegistry.open(by=by, at=now)
        item = found.retire(device, by=by, at=now)
        custodia.ledger.save(found)
    return {"equipo": item.device_id, "distrito": item.district, "baja": True}


def list_devices(custodia: Custodia, actor: Actor) -> list[dict[str, Any]]:
    require_coadministrator(custodia.person(actor.username), "list devices")
    found = registry(custodia)
    items = sorted(found.devices.values(), key=lambda d: (d.district, d.device_id)) if found else []
    return [
        {
            "equipo": d.device_id,
            "distrito": d.district,
            "descripcion": d.description,
            "desde": _iso(d.registered_at),
        }
        for d in items
    ]


# -- hours and calendar (8.A) ---------------------------------------------------------------


def _calendar_for(custodia: Custodia, at: datetime) -> WorkingCalendar:
    return calendar(custodia) or WorkingCalendar.open(by=None, at=at)


def authorize_hours(
    custodia: Custodia,
    actor: Actor,
    *,
    starts_on: date,
    ends_on: date,
    start: str | None,
    end: str | None,
    reason: str,
    channel: OfficialChannel,
) -> dict[str, Any]:
    by = custodia.person(actor.username)
    require_coadministrator(by, "authorize other hours")
    with custodia.ledger.lock(_LOCK):
        now = custodia.clock()
        found = _calendar_for(custodia, now)
        window = found.authorize_hours(
            starts_on=starts_on,
            ends_on=ends_on,
            start=start,
            end=end,
            reason=reason,
            channel=channel,
            by=by,
            at=now,
        )
        custodia.ledger.save(found)
    policy_now(custodia)
    return {
        "desde": window.starts_on.isoformat(),
        "hasta": window.ends_on.isoformat(),
        "inicio": window.start.strftime("%H:%M") if window.start else None,
        "fin": window.end.strftime("%H:%M") if window.end else None,
        "via_oficial": str(channel),
    }


def declare_non_working_day(
    custodia: Custodia, actor: Actor, day: date, channel: OfficialChannel
) -> dict[str, Any]:
    by = custodia.person(actor.username)
    require_coadministrator(by, "declare non-working days")
    with custodia.ledger.lock(_LOCK):
        now = custodia.clock()
        found = _calendar_for(custodia, now)
        recorded = found.declare_non_working_day(day, channel=channel, by=by, at=now)
        if recorded:
            custodia.ledger.save(found)
    policy_now(custodia)
    return {"fecha": day.isoformat(), "registrado": recorded, "via_oficial": str(channel)}


def record_policy(custodia: Custodia) -> bool:
    """Records the policy the service runs under, if it differs from the last one recorded
    (every policy change is in the ledger). Idempotent: a restart with the same file records
    nothing."""
    with custodia.ledger.lock(_LOCK):
        now = custodia.clock()
        found = _calendar_for(custodia, now)
        if not found.adopt(file_policy(custodia), at=now):
            return False
        try:
            custodia.ledger.save(found)
        except ConflictError:
            return False  # another instance recorded it first; the next pass compares again
    log.info("politica_registrada")
    return True


# -- password age ---------------------------------------------------------------------------


def open_age_obligations(custodia: Custodia) -> list[str]:
    """Maximum password age: rotation obligations for passwords older than the policy allows
    (once per password; the domain remembers, so restarts repeat nothing)."""
    policy = policy_now(custodia)
    opened: list[str] = []
    for code in DistrictId.all():
        with custodia.ledger.lock(str(code)):
            district = custodia.district(code)
            accounts = district.open_age_obligations(policy=policy, at=custodia.clock())
            if accounts:
                custodia.ledger.save(district)
                opened.extend(accounts)
    if opened:
        log.info("obligaciones_por_antiguedad", cuentas=opened)
    return opened


def advance(custodia: Custodia) -> None:
    """The service's periodic pass (``CUSTODIA_AVANCE_SECONDS``), for these controls."""
    recorded = record_policy(custodia)
    opened = open_age_obligations(custodia)
    log.info("controles_al_dia", politica_registrada=recorded, obligaciones=len(opened))


# -- recertification ------------------------------------------------------------------------


def current_period(at: datetime, policy: Policy) -> str:
    """The quarter (``2026-T4``) of ``at``, in the policy's time zone."""
    local = policy.local(at)
    return f"{local.year}-T{(local.month - 1) // 3 + 1}"


def _campaign(custodia: Custodia, period: str) -> Recertification:
    code = parse_period(period)
    found = _load(custodia, Recertification, Recertification.create_id(code))
    if found is None:
        raise RecertificationClosedError(code)
    return found


def open_recertification(
    custodia: Custodia, actor: Actor, period: str, due: date | None
) -> dict[str, Any]:
    by = custodia.person(actor.username)
    require_coadministrator(by, "open recertifications")
    code = parse_period(period)
    now = custodia.clock()
    deadline = (
        datetime.combine(due + timedelta(days=1), time(0), tzinfo=custodia.policy.zone)
        if due is not None
        else now + timedelta(days=RECERTIFICATION_DAYS)
    )
    with custodia.ledger.lock(f"recertificacion:{code}"):
        if _load(custodia, Recertification, Recertification.create_id(code)) is not None:
            raise ConflictError(f"recertificacion {code}")
        campaign = Recertification.open(code, due=deadline, by=by, at=now)
        custodia.ledger.save(campaign)
    return {"periodo": code, "vence": _iso(campaign.due)}


def _answer(
    custodia: Custodia,
    actor: Actor,
    district: str | None,
    period: str | None,
    revoke_reason: str | None,
) -> dict[str, Any]:
    by = custodia.person(actor.username)
    now = custodia.clock()
    code = parse_period(period) if period else current_period(now, custodia.policy)
    with custodia.ledger.lock(f"recertificacion:{code}"):
        campaign = _campaign(custodia, code)
        if district is None:
            roster = sorted(
                p.username for p in custodia.ledger.all_of(Person) if p.is_coadministrator
            )
            campaign.attest_roster(roster, by=by, at=now)
            custodia.ledger.save(campaign)
            return {"periodo": code, "distrito": UTCSYD, "estado": "confirmada", "personas": roster}
        target = custodia.district(parse_district_id(district))
        administrator = target.administrator.person_id if target.administrator else None
        if revoke_reason is None:
            accounts = [a.account_id for a in target.open_accounts()]
            campaign.attest(
                target.code,
                titular_id=target.titular_id,
                administrator_id=administrator,
                accounts=accounts,
                by=by,
                at=now,
            )
        else:
            campaign.revoke(
                target.code,
                titular_id=target.titular_id,
                administrator_id=administrator,
                reason=revoke_reason,
                by=by,
                at=now,
            )
        custodia.ledger.save(campaign)
        found = campaign.attestations[target.code]
    return {
        "periodo": code,
        "distrito": target.code,
        "estado": found.outcome,
        "administrador": custodia.username_of(administrator),
        "cuentas": list(found.accounts),
    }


def confirm_recertification(
    custodia: Custodia, actor: Actor, district: str | None, period: str | None
) -> dict[str, Any]:
    """The titular of ``district`` attests their enlace and accounts; without a district, a
    coadministrator attests UTCSyD's own roster."""
    return _answer(custodia, actor, district, period, None)


def revoke_recertification(
    custodia: Custodia, actor: Actor, district: str, reason: str, period: str | None
) -> dict[str, Any]:
    return _answer(custodia, actor, district, period, reason)
