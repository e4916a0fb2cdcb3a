"""The ``custodia`` eventsourcing application and the application services on top of it.

:class:`CustodiaApplication` is a plain ``eventsourcing`` ``Application`` (named ``custodia``:
stream ``custodia-events``) holding the domain aggregates. :class:`Custodia` is the service
layer: each method is one use case, taking plain values and the acting user name, loading the
aggregates, calling the domain, and keeping OpenBao in step with the ledger in the order defined
in :mod:`custody.vault.credentials` and :mod:`custody.app.access` (revoke before recording, grant
after).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from custody.app.access import Access
from custody.app.accounts import Accounts
from custody.app.base import (
    REQUEST_NAMESPACE,
    Actor,
    PersonAlreadyRegisteredError,
    ScopeError,
    channel_from,
)
from custody.app.ledger import (
    ConflictError,
    CustodiaApplication,
    Ledger,
    NotFoundError,
    PersonNotRegisteredError,
    bootstrap_ledger,
)
from custody.app.passwords import generate_password
from custody.app.people import People
from custody.app.ports import CredentialStore, PersonalDataStore
from custody.app.rules import read_rules
from custody.errors import NoStagedRotationError, VaultNotFoundError
from events.domain import (
    ChangeRequest,
    DistrictId,
    Incident,
    Person,
    Policy,
    ValidationError,
    parse_account_id,
    parse_district_id,
)
from events.domain.incident import LEDGER_DIVERGENCES
from events.domain.official_channel import OfficialChannel
from projections.scope import sees_every_district

__all__ = [
    "REQUEST_NAMESPACE",
    "Actor",
    "ConflictError",
    "Custodia",
    "CustodiaApplication",
    "NotFoundError",
    "PersonAlreadyRegisteredError",
    "PersonNotRegisteredError",
    "ScopeError",
    "bootstrap_ledger",
    "channel_from",
    "ledger_incident_id",
]

log = structlog.get_logger("custodia.app")

#: Namespace of the ids of the incidents opened for the ledger follower's alerts (issue 16).
LEDGER_ALERT_NAMESPACE = uuid5(NAMESPACE_URL, "https://custodia.iecm.mx/bitacora/alertas")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def ledger_incident_id(alert_id: str) -> UUID:
    """The id of the incident recording the ledger follower's alert ``alert_id``."""
    return uuid5(LEDGER_ALERT_NAMESPACE, alert_id)


T = TypeVar("T")
RequestT = TypeVar("RequestT")


class Custodia(People, Accounts):
    """Custodia's use cases (one per command of ``custodia --help``), on one application and
    one OpenBao."""

    def __init__(
        self,
        app: CustodiaApplication,
        access: Access,
        credentials: CredentialStore,
        pii: PersonalDataStore,
        policy: Policy,
        clock: Callable[[], datetime] | None = None,
        password_rules: Mapping[str, Any] | None = None,
    ) -> None:
        self.password_rules = password_rules
        self.app = app
        self.access = access
        self.credentials = credentials
        self.pii = pii
        self.policy = policy
        self.clock = clock or (lambda: datetime.now(UTC))
        self.reconcile_grace = timedelta(seconds=60)
        self.ledger = Ledger(app)

    # -- credentials ------------------------------------------------------------------------

    def start_rotation(self, actor: Actor, account: str) -> dict[str, Any]:
        """6.X: stage a new strong password; the password is returned to seal for the caller."""
        account_id = parse_account_id(account)
        with self.ledger.lock(str(account_id.district)):
            password = generate_password(account_id.platform, self.policy_password_rules())
            # OpenBao's current version and the password's fingerprint are asked for while the
            # ledger is loaded; nothing is written before the ledger's checks below pass.
            prefetched = self.credentials.prefetch_stage(actor.token, str(account_id), password)
            by, district = self.person_and_district(actor.username, account_id.district)
            acc = district.open_account(str(account_id))
            base = acc.current_version or 0
            # One rotation id, recorded in the start event, tagged on the staged credential in
            # OpenBao, and used by reconciliation and confirmation (issue 16, finding 9).
            event_id = str(uuid4())
            now = self.clock()

            def record(staged: Any) -> None:
                district.start_rotation(
                    str(account_id),
                    version=staged.version,
                    fingerprint=staged.fingerprint,
                    by=by,
                    at=now,
                    rotation_id=event_id,
                )
                self.ledger.save(district)

            actor.proceed()  # nothing written before this point
            staged = self.credentials.stage(
                actor.token,
                str(account_id),
                password,
                event_id,
                base,
                staged_by=actor.username,
                record=record,
                prefetched=prefetched,
            )
        return {"cuenta": str(account_id), "version": staged.version, "contrasena": password}

    def policy_password_rules(self) -> Any:
        return self.password_rules

    def confirm_rotation(
        self, actor: Actor, account: str, change_request: str | None = None
    ) -> dict[str, Any]:
        account_id = parse_account_id(account)
        by = self.person(actor.username)
        request = self._change_request(change_request) if change_request else None
        with self.ledger.lock(str(account_id.district)):
            district = self.district(account_id.district)
            acc = district.open_account(str(account_id))
            if acc.staged_version is None:
                from events.domain import NoRotationInProgressError

                raise NoRotationInProgressError(str(account_id))
            now = self.clock()
            closed: list[UUID] = []

            def record(confirmed: Any) -> None:
                closed.extend(
                    district.confirm_rotation(
                        str(account_id),
                        version=confirmed.version,
                        by=by,
                        at=now,
                        change_request=request,
                    )
                )
                if request is not None:
                    request.apply(district, by=by, at=now)
                    self.ledger.save(district, request)
                else:
                    self.ledger.save(district)

            confirmed = self.credentials.confirm(
                actor.token,
                str(account_id),
                self._rotation_id(acc),
                confirmed_by=actor.username,
                record=record,
            )
        return {
            "cuenta": str(account_id),
            "version": confirmed.version,
            "obligaciones_cerradas": len(closed),
        }

    def abandon_rotation(self, actor: Actor, account: str) -> dict[str, Any]:
        account_id = parse_account_id(account)
        by = self.person(actor.username)
        with self.ledger.lock(str(account_id.district)):
            district = self.district(account_id.district)
            acc = district.open_account(str(account_id))
            version = acc.staged_version
            if version is None:
                from events.domain import NoRotationInProgressError

                raise NoRotationInProgressError(str(account_id))
            now = self.clock()

            def record(_: Any) -> None:
                district.abandon_rotation(str(account_id), version=version, by=by, at=now)
                self.ledger.save(district)

            try:
                self.credentials.abandon(
                    actor.token,
                    str(account_id),
                    self._rotation_id(acc),
                    record=record,
                )
            except NoStagedRotationError:
                # The ledger's rotation has nothing staged in OpenBao (reconciliation's
                # ``staged_missing``): recording the abandonment is all there is to do.
                record(None)
        return {"cuenta": str(account_id), "version_descartada": version}

    def _rotation_id(self, acc: Any) -> str:
        """The open rotation's id, as its start event recorded it. A start event recorded
        before the id existed (version 1) has none: OpenBao's tag is taken, as it used to be."""
        if acc.staged_rotation_id:
            return str(acc.staged_rotation_id)
        meta = self.credentials.staged_metadata(str(acc.account_id)) or {}
        return str(meta.get("ledger_event_id", ""))

    def reveal(
        self, actor: Actor, account: str, purpose: str, device: str | None
    ) -> dict[str, Any]:
        """6.IX, 8.A, 8.B: the read is recorded in the ledger first; only then the single-use
        wrapping token (sealed for the caller) leaves the service. The server decides access."""
        account_id = parse_account_id(account)
        # 8.A, 8.B: the rules in force and the district's devices; a read the policy refuses
        # (an unregistered device) is refused here, before OpenBao is asked anything.
        policy, devices = read_rules(self, str(account_id.district), device)
        with self.ledger.lock(str(account_id.district)):
            # OpenBao's current version (and, when it is known, the wrapped read itself) are
            # asked for while the ledger is loaded; under the lock, so no rotation of this
            # process lands in between. A token made for a refused reveal is revoked.
            pinned = self.credentials.prefetch_reveal(actor.token, str(account_id))
            try:
                reader, district = self.person_and_district(actor.username, account_id.district)
            except BaseException:
                pinned.drop()
                raise
            now = self.clock()
            role: list[str] = []

            def record_version(version: int) -> None:
                role.append(
                    district.record_read(
                        str(account_id),
                        reader=reader,
                        version=version,
                        purpose=purpose,
                        device_id=device,
                        policy=policy,
                        at=now,
                        district_devices=devices,
                    )
                )
                actor.proceed()  # a refusal here revokes the wrapping token, like any failure
                self.ledger.save(district)

            def void(version: int, error: BaseException) -> None:
                # recorded while the wrapped read was on its way, which then failed
                district.void_read(
                    str(account_id),
                    reader=reader,
                    version=version,
                    reason=type(error).__name__,
                    at=self.clock(),
                )
                self.ledger.save(district)

            try:
                wrapped = self.credentials.reveal(
                    actor.token,
                    str(account_id),
                    lambda wrapped: record_version(int(cast(Any, wrapped).version)),
                    pinned=pinned,
                    record_early=record_version,
                    void=void,
                )
            except VaultNotFoundError:
                district.open_account(str(account_id))  # 10: a closed account says so
                raise
        return {
            "cuenta": str(account_id),
            "version": wrapped.version,
            "envoltorio": wrapped.token,
            "fuera_de_horario": policy.is_outside_working_hours(now),
            "en_calidad_de": role[0] if role else None,
        }

    def register_totp(self, actor: Actor, account: str, uri: str) -> dict[str, Any]:
        account_id = parse_account_id(account)
        by = self.person(actor.username)
        with self.ledger.lock(str(account_id.district)):
            district = self.district(account_id.district)
            district.open_account(str(account_id))
            now = self.clock()
            from events.domain import require_coadministrator

            require_coadministrator(by, "register TOTP seeds")  # before OpenBao is written
            registration = self.credentials.register_totp(actor.token, str(account_id), uri)
            district.register_totp(
                str(account_id), by=by, at=now, seed_fingerprint=registration.seed_fingerprint
            )
            self.ledger.save(district)
        return {
            "cuenta": str(account_id),
            "digitos": registration.digits,
            "periodo": registration.period,
        }

    def totp_code(
        self, actor: Actor, account: str, purpose: str, device: str | None
    ) -> dict[str, Any]:
        account_id = parse_account_id(account)
        reader = self.person(actor.username)
        policy, devices = read_rules(self, str(account_id.district), device)  # 8.A, 8.B
        with self.ledger.lock(str(account_id.district)):
            district = self.district(account_id.district)
            now = self.clock()

            def record(_: Any) -> None:
                district.record_code_read(
                    str(account_id),
                    reader=reader,
                    purpose=purpose,
                    device_id=device,
                    policy=policy,
                    at=now,
                    district_devices=devices,
                )
                self.ledger.save(district)

            district.open_account(str(account_id))  # 10: a closed account has no seed left
            wrapped = self.credentials.reveal_totp(actor.token, str(account_id), record)
        return {"cuenta": str(account_id), "envoltorio": wrapped.token}

    # -- change requests (6.XI, 11.1) -------------------------------------------------------

    def _change_request(self, identifier: str) -> ChangeRequest:
        return self.request_of(ChangeRequest, identifier)

    def request_of(self, kind: type[RequestT], identifier: str) -> RequestT:
        """The request aggregate ``identifier`` of type ``kind`` (a change request, a request to
        open an account), or :class:`NotFoundError` ("solicitud")."""
        return self.ledger.find(kind, identifier, "solicitud")

    def file_change_request(
        self,
        actor: Actor,
        account: str,
        field_name: str,
        detail: str,
        channel: OfficialChannel,
        request_id: str,
    ) -> dict[str, Any]:
        account_id = parse_account_id(account)
        by = self.person(actor.username)
        district = self.district(account_id.district)
        request = ChangeRequest.file(
            district,
            str(account_id),
            field_name,
            detail,
            channel=channel,
            by=by,
            at=self.clock(),
            request_id=uuid5(REQUEST_NAMESPACE, request_id),
        )
        self.ledger.save(request)
        return self._change_request_row(request)

    def _change_request_row(self, request: ChangeRequest) -> dict[str, Any]:
        return {
            "solicitud": str(request.id),
            "cuenta": request.account,
            "distrito": request.district,
            "campo": request.field,
            "detalle": request.detail,
            "via_oficial": str(request.channel),
            "estado": request.status,
            "motivo": request.decision_reason,
        }

    def decide_change_request(
        self, actor: Actor, identifier: str, approve: bool, reason: str | None
    ) -> dict[str, Any]:
        by = self.person(actor.username)
        request = self._change_request(identifier)
        if approve:
            request.approve(by=by, at=self.clock(), reason=reason)
        else:
            request.reject(by=by, at=self.clock(), reason=reason)
        self.ledger.save(request)
        return self._change_request_row(request)

    def apply_change_request(
        self, actor: Actor, identifier: str, value: str | None
    ) -> dict[str, Any]:
        """Only an approved request is applied; a password change is a rotation (confirm the
        staged credential of the account with ``rotar confirmar --solicitud``)."""
        by = self.person(actor.username)
        request = self._change_request(identifier)
        if request.field == "contrasena":
            self.confirm_rotation(actor, request.account, identifier)
            return self._change_request_row(self._change_request(identifier))
        account_id = parse_account_id(request.account)
        with self.ledger.lock(str(account_id.district)):
            district = self.district(account_id.district)
            now = self.clock()
            district.change_account_setting(request, value, by=by, at=now)
            request.apply(district, by=by, at=now)
            self.ledger.save(district, request)
        return self._change_request_row(request)

    def list_change_requests(self, actor: Actor, state: str | None) -> list[dict[str, Any]]:
        by = self.person(actor.username)
        rows = []
        for request in self.ledger.all_of(ChangeRequest):
            if not self.may_see_district(by, request.district):
                continue
            if state and request.status != state:
                continue
            rows.append(self._change_request_row(request))
        return rows

    # -- incidents (8.C, 9.XVIII) -----------------------------------------------------------

    def _incident(self, identifier: str) -> Incident:
        return self.ledger.find(Incident, identifier, "incidente")

    def _incident_row(self, incident: Incident) -> dict[str, Any]:
        from custody.app.incidents import incident_row

        return incident_row(incident)

    def report_incident(
        self,
        actor: Actor,
        account: str,
        kind: str,
        description: str,
        request_id: str,
        detected_at: datetime | None = None,
    ) -> dict[str, Any]:
        account_id = parse_account_id(account)
        by = self.person(actor.username)
        district = self.district(account_id.district)
        incident = Incident.report(
            district,
            str(account_id),
            kind,
            description,
            by=by,
            policy=self.policy,
            at=self.clock(),
            incident_id=uuid5(REQUEST_NAMESPACE, request_id),
            detected_at=detected_at,
        )
        self.ledger.save(incident)
        return self._incident_row(incident)

    def notify_incident(
        self, actor: Actor, identifier: str, channel: OfficialChannel
    ) -> dict[str, Any]:
        by = self.person(actor.username)
        incident = self._incident(identifier)
        incident.notify(channel=channel, by=by, at=self.clock())
        self.ledger.save(incident)
        return self._incident_row(incident)

    def contain_incident(self, actor: Actor, identifier: str, detail: str) -> dict[str, Any]:
        by = self.person(actor.username)
        incident = self._incident(identifier)
        # The institution's incident (the ledger's) has no district: no rotation to check.
        district = self.district(incident.district) if incident.district else None
        incident.contain(district, detail, by=by, at=self.clock())
        self.ledger.save(incident)
        return self._incident_row(incident)

    def close_incident(self, actor: Actor, identifier: str, detail: str) -> dict[str, Any]:
        by = self.person(actor.username)
        incident = self._incident(identifier)
        incident.close(detail, by=by, at=self.clock())
        self.ledger.save(incident)
        return self._incident_row(incident)

    def dismiss_incident(self, actor: Actor, identifier: str, reason: str) -> dict[str, Any]:
        by = self.person(actor.username)
        incident = self._incident(identifier)
        incident.dismiss(reason, by=by, at=self.clock())
        self.ledger.save(incident)
        return self._incident_row(incident)

    def acknowledge_incident(
        self, actor: Actor, identifier: str, measures: str | None
    ) -> dict[str, Any]:
        by = self.person(actor.username)
        incident = self._incident(identifier)
        incident.acknowledge(measures, by=by, at=self.clock())
        self.ledger.save(incident)
        return self._incident_row(incident)

    def record_ledger_tampering(
        self,
        *,
        alert_id: str,
        divergence: str,
        entry: int | None,
        anchored_size: int,
        anchored_root: str | None,
        observed_size: int,
        observed_root: str | None,
        diverged_at: datetime,
    ) -> tuple[UUID, bool]:
        """Issue 16: the ledger follower's alert ``alert_id`` (it refused to sign a ledger that
        does not extend the head anchored in OpenBao) opens the institution's incident. Its id
        derives from the alert, so an alert read again (a restart, another instance) records
        nothing more: the id, and whether this call recorded it."""
        incident_id = ledger_incident_id(alert_id)
        try:
            self.app.repository.get(incident_id)
            return incident_id, False
        except AggregateNotFoundError:
            pass
        incident = Incident.ledger_tampering(
            incident_id=incident_id,
            divergence=divergence if divergence in LEDGER_DIVERGENCES else "otra",
            entry=entry,
            anchored_size=anchored_size,
            anchored_root=anchored_root,
            observed_size=observed_size,
            observed_root=observed_root,
            alert_id=alert_id,
            diverged_at=diverged_at,
            policy=self.policy,
            at=self.clock(),
        )
        try:
            self.app.save(incident)
        except IntegrityError:
            return incident_id, False  # another instance recorded it first
        return incident_id, True

    def incident_status(self, incident_id: UUID) -> str | None:
        """The state of an incident (``None`` if the ledger has no such incident)."""
        try:
            item: Any = self.app.repository.get(incident_id)
        except AggregateNotFoundError:
            return None
        return str(item.status) if isinstance(item, Incident) else None

    def list_incidents(
        self,
        actor: Actor,
        district: str | None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """The incident ledger; ``since``/``until`` bound when each was reported."""
        from custody.app.incidents import in_period

        by = self.person(actor.username)
        if not sees_every_district(by.roles):
            raise ScopeError(actor.username, district or "*")
        code = str(parse_district_id(district)) if district else None
        if since is not None and until is not None and since > until:
            raise ValidationError("hasta", "before desde")
        return [
            self._incident_row(i)
            for i in sorted(self.ledger.all_of(Incident), key=lambda i: i.reported_at)
            if (code is None or i.district == code) and in_period(i.reported_at, since, until)
        ]

    # -- reconciliation (ledger vs OpenBao) and erasure -------------------------------------

    def desired_state(self) -> Any:
        """The ledger's view of OpenBao, as :class:`custody.app.reconcile.DesiredState`."""
        from custody.app.reconcile import AccountState, DesiredState

        now = self.clock()
        holders: dict[str, str | None] = {}
        accounts: dict[str, AccountState] = {}
        for code in DistrictId.all():
            district = self.district(code)
            holders[str(code)] = self.username_of(district.holder_at(now))
            for acc in district.accounts.values():
                if acc.is_open:
                    accounts[acc.account_id] = AccountState(
                        current_version=acc.current_version or 0,
                        # The start event's rotation id; for a version 1 event (no id),
                        # the id that version derived for an account never abandoned.
                        open_rotation=(
                            (
                                acc.staged_rotation_id
                                or str(
                                    uuid5(
                                        REQUEST_NAMESPACE,
                                        f"{acc.account_id}:{acc.staged_version}",
                                    )
                                )
                            )
                            if acc.staged_version
                            else None
                        ),
                        staged_version=acc.staged_version,
                        staged_fingerprint=acc.staged_fingerprint,
                        totp_fingerprint=acc.totp_fingerprint or None,
                    )
        roles: dict[str, list[str]] = {"coadministrador": [], "titular": [], "secretaria": []}
        for person in self.ledger.all_of(Person):
            for role in person.roles:
                if role in roles and not person.erased:
                    roles[role].append(person.username)
        return DesiredState(holders=holders, accounts=accounts, roles=roles)

    def reconcile(self, actor: Actor, repair: bool) -> dict[str, Any]:
        """Compare OpenBao with the ledger; repair both sides (coadministrators only)."""
        from custody.app.reconcile import DriftKind, Reconciler
        from events.domain import require_coadministrator

        by = self.person(actor.username)
        require_coadministrator(by, "reconcile")
        # The service's own client; the role groups with the coadministrator's token.
        reconciler = Reconciler(
            self.access._client, role_token=actor.token, grace=self.reconcile_grace
        )
        report = reconciler.reconcile(self.desired_state(), repair=repair)
        repaired, pending = len(report.repaired), len(report.pending)
        if repair:
            # The ledger-side repair (custody.app.reconcile): a confirmation OpenBao has and the
            # ledger lacks (its write failed after OpenBao's) is recorded; the staged leftover
            # it leaves is then deleted by a second, OpenBao-side pass.
            recorded = [d for d in report.pending if d.kind == DriftKind.CONFIRMED_UNRECORDED]
            for drift in recorded:
                self._record_confirmation(by, drift.facts)
            if recorded:
                again = reconciler.reconcile(self.desired_state(), repair=True)
                repaired += len(recorded) + len(again.repaired)
                pending = len(again.pending)
        return {
            "diferencias": [
                {"tipo": d.kind, "objeto": d.subject, "esperado": d.expected, "actual": d.actual}
                for d in report.drifts
            ],
            "reparadas": repaired,
            "pendientes": pending,
        }

    def _record_confirmation(self, by: Person, facts: Mapping[str, str]) -> None:
        """Record a rotation confirmation found in OpenBao only (``confirmed_unrecorded``)."""
        account_id = parse_account_id(facts["account"])
        with self.ledger.lock(str(account_id.district)):
            district = self.district(account_id.district)
            district.confirm_rotation(
                str(account_id), version=int(facts["version"]), by=by, at=self.clock()
            )
            self.ledger.save(district)
