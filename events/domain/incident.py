"""Incidents: an account intervened by outsiders or operated by unauthorized staff (8.C,
9.XVIII).

The administrator (or the titular, or UTCSyD) reports it; UTCSyD notifies the Secretaría
Ejecutiva "inmediatamente" — measured against the policy's deadline, one hour by default, any
hour of any day —; containment needs the account's credentials rotated after the report; then
it is closed. States only move forward::

    reportado ──notify──▶ notificado ──contain──▶ contenido ──close──▶ cerrado
        └──────────contain──────────────────────────▲ (notify still due)

Containment may come before the notification (issue 19: the rotation is done at once, the
oficio follows); closure needs both. Any open incident may be dismissed as a false alarm
(``descartado``, with the reason). Once notified, the Secretaría Ejecutiva records its
acknowledgement and the measures it ordered (:meth:`Incident.acknowledge`), any time after.
A report records when the incident was *detected* as well as when it was reported (never
later than the report); the notification deadline runs from the report, when UTCSyD learns.

An incident is also opened by the service itself (:meth:`Incident.unrecorded_read`) when
OpenBao's audit log shows a secret read that has no matching record in the ledger (issue 16):
the read is recorded there (who, what, when, from where — never the secret), the incident
follows the same states.

And for the whole institution (:meth:`Incident.ledger_tampering`), when the ledger follower
refuses to sign because the ledger is not a consistent extension of the signed tree head
anchored in OpenBao (issue 16, 6.XII, 11.8): the ledger of every district is in question, so the
incident has no district and no account (``district`` and ``account`` are ``None``). It is
notified and closed like any other; its containment cannot be a rotation of one account's
credentials, so it is recorded (:attr:`Incident.LedgerContained`) with what was done (the
history restored from the witnesses, the credential that rewrote it revoked), by a
coadministrator.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from events.domain.base import aggregate_deepcopy, command_time, stable_topics
from events.domain.clock import as_utc
from events.domain.district import ChannelPayload, District
from events.domain.errors import (
    ContainmentWithoutRotationError,
    DetectionTimeError,
    DistrictMismatchError,
    InvalidTextError,
    InvalidTransitionError,
    NotAllowedToReportError,
    NotExecutiveSecretariatError,
)
from events.domain.official_channel import OfficialChannel
from events.domain.person import Person, require_coadministrator
from events.domain.policy import Policy
from events.domain.values import (
    INCIDENT_TYPES,
    IncidentStatus,
    IncidentType,
    ReadKind,
    choice,
    validate_text,
)

__all__ = [
    "ACCESS_CHANGES",
    "LEDGER_DIVERGENCES",
    "LEDGER_TAMPERING",
    "UNRECORDED_ACCESS_CHANGE",
    "UNRECORDED_READ",
    "Incident",
]

#: The type of an incident opened for a secret read the ledger does not record (issue 16).
UNRECORDED_READ: Final = "lectura_no_registrada"

#: The type of an incident opened when the ledger is not a consistent extension of the signed
#: tree head anchored outside NATS (issue 16): the whole institution's, no district.
LEDGER_TAMPERING: Final = "bitacora_alterada"

#: How the ledger departs from what was signed, as the follower found it.
LedgerDivergence = Literal[
    "reescrita", "truncada", "entrada_faltante", "bifurcada", "cabeza_invalida", "otra"
]
LEDGER_DIVERGENCES: Final[tuple[LedgerDivergence, ...]] = (
    "reescrita",
    "truncada",
    "entrada_faltante",
    "bifurcada",
    "cabeza_invalida",
    "otra",
)
_DIVERGENCE_TEXT: Final = {
    "reescrita": "entradas ya firmadas fueron reescritas",
    "truncada": "la bitácora es más corta que lo ya firmado",
    "entrada_faltante": "falta una entrada de la bitácora",
    "bifurcada": "otra instancia firmó otra historia del mismo tamaño",
    "cabeza_invalida": "la cabeza anclada en OpenBao no se puede leer o su firma no es válida",
    "otra": "la bitácora contradice lo ya firmado",
}

#: The type of an incident opened when OpenBao's audit log shows a change to who must use the
#: second factor, or a destroyed factor, made with a person's token and recorded by no command of
#: theirs: the whole institution's, no district (a person's login, not an account, is at stake).
UNRECORDED_ACCESS_CHANGE: Final = "cambio_de_acceso_no_registrado"

#: What such a change was.
AccessChange = Literal["grupo_segundo_factor", "factor_destruido"]
ACCESS_CHANGES: Final[tuple[AccessChange, ...]] = ("grupo_segundo_factor", "factor_destruido")
_ACCESS_CHANGE_TEXT: Final = {
    "grupo_segundo_factor": "cambió quién debe usar el segundo factor (el grupo "
    "custodia-segundo-factor de OpenBao)",
    "factor_destruido": "destruyó el segundo factor de una persona",
}

IncidentKind = (
    IncidentType
    | Literal["lectura_no_registrada", "bitacora_alterada", "cambio_de_acceso_no_registrado"]
)

_KIND_TEXT: Final = {"contrasena": "la contraseña", "codigo_totp": "un código 2FA"}


def _root_text(field: str, root: str | None) -> str | None:
    """A tree root as base64 text (public data), or None."""
    if root is None:
        return None
    return validate_text(field, root, max_length=100)


def _who(person: UUID | None, identity: str) -> str:
    """Who an audit log entry names: a registered person by id, else OpenBao's name for it."""
    return f"la persona {person}" if person is not None else f"la identidad «{identity}»"


def _audit_origin(identity: str, remote_address: str, audit_request_id: str) -> dict[str, str]:
    """The fields of an incident the service opened from OpenBao's audit log: who and from
    where as OpenBao logged them, and its request id."""
    return {
        "identity": validate_text("identity", identity or "desconocida", max_length=200),
        "remote_address": validate_text(
            "remote_address", remote_address or "desconocida", max_length=100
        ),
        "audit_request_id": validate_text("audit_request_id", audit_request_id, max_length=100),
    }


def _detail(detail: str) -> str:
    return validate_text("detail", detail, max_length=4000, multiline=True)


@stable_topics("Incident")
class Incident(Aggregate):
    """A compromise of one account. Create with :meth:`report`."""

    __deepcopy__ = aggregate_deepcopy  # the state is plain data: copied cheaply

    class Reported(Aggregate.Created):
        """``notify_by`` is the notification deadline under the policy in force;
        ``detected_at`` when the compromise was noticed (version 2; a version 1 report, made
        before it was asked, counts as detected when reported)."""

        class_version = 2

        district: str
        account: str
        incident_type: str
        description: str
        notify_by: datetime
        detected_at: datetime
        by: UUID

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["detected_at"] = state["timestamp"]

    class UnrecordedReadDetected(Aggregate.Created):
        """OpenBao's audit log shows a secret read with no matching ledger record (issue 16).

        ``reader`` is the person whose login read (``None``: a token of no person, e.g. a
        root token; ``identity`` then names it as OpenBao does, e.g. ``token``); ``version``
        the password version (``None`` for a 2FA code); ``staged`` a staged password;
        ``audit_request_id`` the request id OpenBao logged (the incident's id derives from it,
        so the read is recorded once); ``accessed_at`` OpenBao's time of the read.
        ``by`` is ``None``: the service opened it. No secret, token, accessor or HMAC.
        """

        district: str
        account: str
        incident_type: str
        description: str
        notify_by: datetime
        by: UUID | None
        kind: str
        version: int | None
        staged: bool
        reader: UUID | None
        identity: str
        remote_address: str
        audit_request_id: str
        accessed_at: datetime

        def apply(self, aggregate: Aggregate) -> None:
            incident = aggregate
            assert isinstance(incident, Incident)
            incident.unrecorded_read_at = self.accessed_at
            incident.unrecorded_reader = self.reader

    class LedgerTamperingDetected(Aggregate.Created):
        """The ledger follower refused to sign (issue 16): the ledger is not a consistent
        extension of the signed tree head anchored in OpenBao. The institution's incident:
        ``district`` and ``account`` are ``None``.

        ``divergence`` is how it departs (:data:`LEDGER_DIVERGENCES`); ``entry`` the first
        ledger entry found wrong when known; ``anchored_size``/``anchored_root`` the head it
        contradicts (root base64, ``None`` if unreadable); ``observed_size``/``observed_root``
        what the follower computed from the stream; ``alert_id`` the follower's alert in
        OpenBao (``bitacora/alertas/<id>``; the incident's id derives from it, so one alert is
        one incident); ``diverged_at`` when the follower wrote it. ``by`` is ``None``: the
        service opened it. No secret: a tree head is public data.
        """

        district: str | None
        account: str | None
        incident_type: str
        description: str
        notify_by: datetime
        by: UUID | None
        divergence: str
        entry: int | None
        anchored_size: int
        anchored_root: str | None
        observed_size: int
        observed_root: str | None
        alert_id: str
        diverged_at: datetime

        def apply(self, aggregate: Aggregate) -> None:
            incident = aggregate
            assert isinstance(incident, Incident)
            incident.divergence = self.divergence
            incident.diverged_at = self.diverged_at
            incident.ledger_alert = self.alert_id

    class UnrecordedAccessChangeDetected(Aggregate.Created):
        """OpenBao's audit log shows, made with a person's own token, a change of the group of
        people who must use the second factor, or a destroyed factor, and the ledger records no
        command of that person that makes it (``personas alta``, ``personas segundo-factor``,
        ``personas restablecer-factor``). Someone who can take a person out of that group and
        knows their password can log in as them: the institution's incident (``district`` and
        ``account`` are ``None``).

        ``change`` is what changed (:data:`ACCESS_CHANGES`); ``actor`` the person whose token
        made it (``None``: not a registered person; ``identity`` then names it as OpenBao
        does); ``audit_request_id`` OpenBao's request id (the incident's id derives from it);
        ``changed_at`` OpenBao's time of the change. ``by`` is ``None``: the service opened it.
        No secret, token, accessor or HMAC.
        """

        district: str | None
        account: str | None
        incident_type: str
        description: str
        notify_by: datetime
        by: UUID | None
        change: str
        actor: UUID | None
        identity: str
        remote_address: str
        audit_request_id: str
        changed_at: datetime

    class Notified(Aggregate.Event):
        """8.C: the Secretaría Ejecutiva was notified, by ``channel``."""

        channel: ChannelPayload
        on_time: bool
        by: UUID

    class Contained(Aggregate.Event):
        """The account's credentials were rotated after the report (``rotation_version``)."""

        detail: str
        rotation_version: int
        rotation_confirmed_at: datetime
        by: UUID

    class LedgerContained(Aggregate.Event):
        """Containment of a ledger-integrity incident: what was done (``detail``), by whom."""

        detail: str
        by: UUID

    class Closed(Aggregate.Event):
        detail: str
        by: UUID

    class Dismissed(Aggregate.Event):
        """A false alarm: closed without consequence, with the coadministrator's reason."""

        reason: str
        by: UUID

    class Acknowledged(Aggregate.Event):
        """8.C: the Secretaría Ejecutiva took note; ``measures`` it ordered, if any."""

        measures: str | None
        by: UUID

    @event(Reported)
    def __init__(
        self,
        id: UUID,  # the library passes the id under this name
        district: str | None,
        account: str | None,
        incident_type: IncidentKind,
        description: str,
        notify_by: datetime,
        by: UUID | None,
        timestamp: datetime,
        detected_at: datetime | None = None,
    ) -> None:
        self.district = district  # None: the whole institution (a ledger-integrity incident)
        self.account = account
        self.incident_type: IncidentKind = incident_type
        self.description = description
        self.reported_by = by
        self.reported_at = timestamp
        # The service's own incidents (no ``detected_at`` field) are detected when recorded.
        self.detected_at = detected_at or timestamp
        self.notify_by = notify_by
        self.status: IncidentStatus = "reportado"
        self.notified_at: datetime | None = None
        self.notified_on_time: bool | None = None
        self.contained_at: datetime | None = None
        self.rotation_version: int | None = None
        self.closed_at: datetime | None = None
        self.dismissed_at: datetime | None = None
        self.dismiss_reason: str | None = None
        self.acknowledged_at: datetime | None = None
        self.measures: str | None = None
        self.unrecorded_read_at: datetime | None = None
        self.unrecorded_reader: UUID | None = None
        self.divergence: str | None = None
        self.diverged_at: datetime | None = None
        self.ledger_alert: str | None = None

    @property
    def institutional(self) -> bool:
        """An incident of the whole institution (no district, no account): the ledger's."""
        return self.district is None

    @classmethod
    def unrecorded_read(
        cls,
        *,
        incident_id: UUID,
        district: str,
        account: str,
        kind: ReadKind,
        version: int | None,
        staged: bool,
        reader: UUID | None,
        identity: str,
        remote_address: str,
        audit_request_id: str,
        accessed_at: datetime,
        policy: Policy,
        at: datetime,
    ) -> Incident:
        """Issue 16: record a secret read found in OpenBao's audit log with no ledger record,
        and open an incident for the Secretaría Ejecutiva (notification deadline as for a
        reported incident, counted from ``at``, when it was detected)."""
        at = as_utc(at)
        what = _KIND_TEXT[choice("kind", kind, ("contrasena", "codigo_totp"))]
        if staged:
            what = "la contraseña preparada"
        if version is not None:
            what += f" (versión {version})"
        description = validate_text(
            "description",
            f"Lectura sin registro en la bitácora: {_who(reader, identity)} leyó {what} de "
            f"{account} directamente en OpenBao, desde "
            f"{remote_address or 'una dirección desconocida'} (registro de auditoría de OpenBao).",
            max_length=4000,
            multiline=True,
        )
        return cls._detected(
            cls.UnrecordedReadDetected,
            incident_id,
            (district, account),
            UNRECORDED_READ,
            description,
            policy,
            at,
            kind=kind,
            version=version,
            staged=staged,
            reader=reader,
            **_audit_origin(identity, remote_address, audit_request_id),
            accessed_at=as_utc(accessed_at),
        )

    @classmethod
    def _detected(
        cls,
        event: type[Aggregate.Created],
        incident_id: UUID,
        where: tuple[str | None, str | None],
        incident_type: str,
        description: str,
        policy: Policy,
        at: datetime,
        **fields: Any,
    ) -> Incident:
        """An incident the service opened itself (``by`` None), at ``at``: its district and
        account (``where``; none for the institution's), the notification deadline counted
        from ``at``, and the creation ``event``'s own ``fields``."""
        incident: Incident = cls._create(
            event,
            id=incident_id,
            district=where[0],
            account=where[1],
            incident_type=incident_type,
            description=description,
            notify_by=policy.notification_deadline(at),
            by=None,
            timestamp=at,
            **fields,
        )
        return incident

    @classmethod
    def unrecorded_access_change(
        cls,
        *,
        incident_id: UUID,
        change: AccessChange,
        actor: UUID | None,
        identity: str,
        remote_address: str,
        audit_request_id: str,
        changed_at: datetime,
        policy: Policy,
        at: datetime,
    ) -> Incident:
        """Record a change of access found in OpenBao's audit log with no command in the ledger
        that makes it, and open the institution's incident for the Secretaría Ejecutiva
        (deadline counted from ``at``, when it was detected)."""
        at = as_utc(at)
        what = _ACCESS_CHANGE_TEXT[choice("change", change, ACCESS_CHANGES)]
        description = validate_text(
            "description",
            f"Cambio de acceso sin registro en la bitácora: {_who(actor, identity)} {what} "
            "directamente en "
            f"OpenBao, desde {remote_address or 'una dirección desconocida'} (registro de "
            "auditoría de OpenBao). Quien saca a una persona de ese grupo y conoce su "
            "contraseña puede entrar como ella: revise sus lecturas desde entonces.",
            max_length=4000,
            multiline=True,
        )
        return cls._detected(
            cls.UnrecordedAccessChangeDetected,
            incident_id,
            (None, None),
            UNRECORDED_ACCESS_CHANGE,
            description,
            policy,
            at,
            change=change,
            actor=actor,
            **_audit_origin(identity, remote_address, audit_request_id),
            changed_at=as_utc(changed_at),
        )

    @classmethod
    def ledger_tampering(
        cls,
        *,
        incident_id: UUID,
        divergence: str,
        entry: int | None,
        anchored_size: int,
        anchored_root: str | None,
        observed_size: int,
        observed_root: str | None,
        alert_id: str,
        diverged_at: datetime,
        policy: Policy,
        at: datetime,
    ) -> Incident:
        """Issue 16, 6.XII, 11.8: the follower found the ledger rewritten, cut or forked against the
        head anchored in OpenBao and refused to sign; open the institution's incident for the
        Secretaría Ejecutiva (deadline counted from ``at``, when the service detected it)."""
        at = as_utc(at)
        kind = choice("divergence", divergence, LEDGER_DIVERGENCES)
        alert = validate_text("alert_id", alert_id, max_length=200)
        for name, number in (("anchored_size", anchored_size), ("observed_size", observed_size)):
            if not isinstance(number, int) or number < 0:
                raise InvalidTextError(name, "not a size")
        where = f" desde la entrada {entry}" if entry is not None else ""
        description = validate_text(
            "description",
            f"Bitácora alterada: {_DIVERGENCE_TEXT[kind]}{where}. La cabeza firmada anclada en "
            f"OpenBao cubre {anchored_size} entradas; el seguidor calculó {observed_size} "
            f"entradas y se negó a firmar (alerta {alert} en OpenBao).",
            max_length=4000,
            multiline=True,
        )
        return cls._detected(
            cls.LedgerTamperingDetected,
            incident_id,
            (None, None),
            LEDGER_TAMPERING,
            description,
            policy,
            at,
            divergence=kind,
            entry=entry,
            anchored_size=anchored_size,
            anchored_root=_root_text("anchored_root", anchored_root),
            observed_size=observed_size,
            observed_root=_root_text("observed_root", observed_root),
            alert_id=alert,
            diverged_at=as_utc(diverged_at),
        )

    @classmethod
    def report(
        cls,
        district: District,
        account: str,
        incident_type: str,
        description: str,
        *,
        by: Person,
        policy: Policy,
        at: datetime,
        incident_id: UUID | None = None,
        detected_at: datetime | None = None,
    ) -> Incident:
        """8.C, 9.XVIII: the district's administrator, its titular or a coadministrator reports
        that an open account was intervened or operated without authorization. ``detected_at``
        (default: now) may not be later than the report."""
        at = as_utc(at)
        detected = at if detected_at is None else as_utc(detected_at)
        if detected > at:
            raise DetectionTimeError(detected, at, "posterior_al_reporte")
        current = district.open_account(account)
        titular = district.titular_id == by.id and by.is_titular_of(district.code)
        if not (titular or by.is_coadministrator or district.is_administrator_of_record(by, at)):
            raise NotAllowedToReportError(by.id, "report incidents", district.code)
        return cls(
            id=incident_id or uuid4(),
            district=district.code,
            account=current.account_id,
            incident_type=choice("incident_type", incident_type, INCIDENT_TYPES),
            description=validate_text("description", description, max_length=4000, multiline=True),
            notify_by=policy.notification_deadline(at),
            by=by.id,
            timestamp=at,
            detected_at=detected,
        )

    @property
    def is_open(self) -> bool:
        """Neither closed nor dismissed."""
        return self.status not in ("cerrado", "descartado")

    def notify(self, *, channel: OfficialChannel, by: Person, at: datetime) -> None:
        """8.C: a coadministrator records the notification to the Secretaría Ejecutiva."""
        at = command_time(self, at)
        require_coadministrator(by, "notify incidents")
        if self.notified_at is not None or not self.is_open:
            raise InvalidTransitionError("incident", self.id, self.status, "notify")
        self._notified(
            channel=channel.to_event(), on_time=at <= self.notify_by, by=by.id, timestamp=at
        )

    @event(Notified)
    def _notified(
        self, channel: ChannelPayload, on_time: bool, by: UUID, timestamp: datetime
    ) -> None:
        if self.status == "reportado":  # a contained incident stays contained
            self.status = "notificado"
        self.notified_at = timestamp
        self.notified_on_time = on_time

    def contain(self, district: District | None, detail: str, *, by: Person, at: datetime) -> None:
        """Containment: refused unless the account has a rotation confirmed after the report.
        An incident of the institution (the ledger's) has no account: ``district`` is ``None``
        and the containment is what ``detail`` says was done."""
        at = command_time(self, at)
        require_coadministrator(by, "contain incidents")
        if self.status not in ("reportado", "notificado"):
            raise InvalidTransitionError("incident", self.id, self.status, "contain")
        if self.district is None or district is None:
            if self.district is not None or district is not None:
                raise DistrictMismatchError(
                    self.district or "institución", district.code if district else "institución"
                )
            self._ledger_contained(detail=_detail(detail), by=by.id, timestamp=at)
            return
        if district.code != self.district:
            raise DistrictMismatchError(self.district, district.code)
        assert self.account is not None  # an incident of a district is of one of its accounts
        account = district.account(self.account)
        confirmed_at = account.last_confirmed_at
        if confirmed_at is None or confirmed_at <= self.reported_at or confirmed_at > at:
            raise ContainmentWithoutRotationError(
                self.id, self.account, self.reported_at, confirmed_at
            )
        assert account.current_version is not None
        self._contained(
            detail=_detail(detail),
            rotation_version=account.current_version,
            rotation_confirmed_at=confirmed_at,
            by=by.id,
            timestamp=at,
        )

    @event(Contained)
    def _contained(
        self,
        detail: str,
        rotation_version: int,
        rotation_confirmed_at: datetime,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        self.status = "contenido"
        self.contained_at = timestamp
        self.rotation_version = rotation_version

    @event(LedgerContained)
    def _ledger_contained(self, detail: str, by: UUID, timestamp: datetime) -> None:
        self.status = "contenido"
        self.contained_at = timestamp

    def close(self, detail: str, *, by: Person, at: datetime) -> None:
        """A coadministrator closes a contained incident, once the Secretaría Ejecutiva was
        notified (8.C)."""
        at = command_time(self, at)
        require_coadministrator(by, "close incidents")
        self._require_status("contenido", "close")
        if self.notified_at is None:
            raise InvalidTransitionError("incident", self.id, "sin_notificar", "close")
        self._closed(detail=_detail(detail), by=by.id, timestamp=at)

    @event(Closed)
    def _closed(self, detail: str, by: UUID, timestamp: datetime) -> None:
        self.status = "cerrado"
        self.closed_at = timestamp

    def dismiss(self, reason: str, *, by: Person, at: datetime) -> None:
        """A coadministrator closes an open incident as a false alarm, saying why."""
        at = command_time(self, at)
        require_coadministrator(by, "dismiss incidents")
        if not self.is_open:
            raise InvalidTransitionError("incident", self.id, self.status, "dismiss")
        self._dismissed(
            reason=validate_text("reason", reason, max_length=4000, multiline=True),
            by=by.id,
            timestamp=at,
        )

    @event(Dismissed)
    def _dismissed(self, reason: str, by: UUID, timestamp: datetime) -> None:
        self.status = "descartado"
        self.dismissed_at = timestamp
        self.dismiss_reason = reason

    def acknowledge(self, measures: str | None, *, by: Person, at: datetime) -> None:
        """8.C: the Secretaría Ejecutiva records that it took note of a notified incident, and
        the measures it ordered. Once."""
        at = command_time(self, at)
        if not by.has_role("secretaria"):
            raise NotExecutiveSecretariatError(by.id, "acknowledge incidents")
        if self.notified_at is None:
            raise InvalidTransitionError("incident", self.id, "sin_notificar", "acknowledge")
        if self.acknowledged_at is not None:
            raise InvalidTransitionError("incident", self.id, "enterado", "acknowledge")
        text = measures.strip() if measures else ""
        self._acknowledged(
            measures=(
                validate_text("measures", text, max_length=4000, multiline=True) if text else None
            ),
            by=by.id,
            timestamp=at,
        )

    @event(Acknowledged)
    def _acknowledged(self, measures: str | None, by: UUID, timestamp: datetime) -> None:
        self.acknowledged_at = timestamp
        self.measures = measures

    def _require_status(self, status: IncidentStatus, action: str) -> None:
        if self.status != status:
            raise InvalidTransitionError("incident", self.id, self.status, action)
