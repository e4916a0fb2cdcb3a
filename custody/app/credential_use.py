"""The use cases of an account's credentials (6.IX, 6.X; 8.A, 8.B): a password's rotation
(start, confirm, abandon), a read of the password (``revelar``), a TOTP seed's registration and
a read of a code.

OpenBao and the ledger are kept in step in the orders :mod:`custody.vault.credentials` defines:
a read is recorded in the ledger before its single-use wrapping token leaves the service (the
token of a refused read is revoked), and nothing is written before the ledger's checks (the
rules in force and the district's devices, :mod:`custody.app.rules`) have passed. Not to be
confused with :mod:`custody.vault.credentials`, the OpenBao side, which these use cases reach
through the :class:`~custody.app.ports.CredentialStore` port.
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID, uuid4

from custody.app.base import Actor, UseCases
from custody.app.passwords import generate_password
from custody.app.rules import (
    calendar,
    read_rules,
    refused_before_openbao,
    registry,
    rules_from,
)
from custody.errors import NoStagedRotationError, VaultNotFoundError
from events.domain import (
    ChangeRequest,
    NoRotationInProgressError,
    NotEntitledToReadError,
    TotpNotRegisteredError,
    parse_account_id,
    require_coadministrator,
)


class CredentialUse(UseCases):
    """A credential's rotation, its reads (password and TOTP code), and its TOTP seed."""

    def start_rotation(self, actor: Actor, account: str) -> dict[str, Any]:
        """6.X: stage a new strong password; the password is returned to seal for the caller."""
        account_id = parse_account_id(account)
        with self.ledger.lock(str(account_id.district)):
            password = generate_password(account_id.platform, self.policy_password_rules())
            # OpenBao's current version and the password's fingerprint are asked for while the
            # ledger is loaded; nothing is written before the ledger's checks below pass.
            prefetched = self.credentials.prefetch_stage(actor.token, str(account_id), password)
            by, district = self.ledger.person_and_district(actor.username, account_id.district)
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
        by = self.ledger.person(actor.username)
        request = (
            self.ledger.find(ChangeRequest, change_request, "solicitud") if change_request else None
        )
        with self.ledger.lock(str(account_id.district)):
            district = self.ledger.district(account_id.district)
            acc = district.open_account(str(account_id))
            if acc.staged_version is None:
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
        by = self.ledger.person(actor.username)
        with self.ledger.lock(str(account_id.district)):
            district = self.ledger.district(account_id.district)
            acc = district.open_account(str(account_id))
            version = acc.staged_version
            if version is None:
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
        code = str(account_id.district)
        # 8.A, 8.B: the rules in force and the district's devices. When the policy may refuse
        # a read (only registered devices), they are read first: a refused read is refused
        # here, before OpenBao is asked anything. Otherwise they are read with the caller
        # and the district, once OpenBao's calls are on their way (issue 21).
        early = read_rules(self, code, device) if refused_before_openbao(self) else None
        with self.ledger.lock(code):
            # OpenBao's current version (and, when it is known, the wrapped read itself) are
            # asked for while the ledger is loaded; under the lock, so no rotation of this
            # process lands in between. A token made for a refused reveal is revoked.
            pinned = self.credentials.prefetch_reveal(actor.token, str(account_id))
            try:
                if early is None:
                    reader, district, in_force, found = self.ledger.together(
                        lambda: self.ledger.person(actor.username),
                        lambda: self.ledger.district(code),
                        lambda: calendar(self),
                        lambda: registry(self),
                    )
                    policy, devices = rules_from(self, code, device, in_force, found)
                else:
                    policy, devices = early
                    reader, district = self.ledger.person_and_district(actor.username, code)
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
        by = self.ledger.person(actor.username)
        with self.ledger.lock(str(account_id.district)):
            district = self.ledger.district(account_id.district)
            district.open_account(str(account_id))
            now = self.clock()
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
        reader = self.ledger.person(actor.username)
        policy, devices = read_rules(self, str(account_id.district), device)  # 8.A, 8.B
        with self.ledger.lock(str(account_id.district)):
            district = self.ledger.district(account_id.district)
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

            account_state = district.open_account(str(account_id))  # 10: closed: no seed left
            if not account_state.totp_registered:  # said before OpenBao is asked ("unknown key")
                if district.reader_role(reader, now) is None:  # and only to who may read it
                    raise NotEntitledToReadError(reader.id, str(account_id))
                raise TotpNotRegisteredError(str(account_id))
            wrapped = self.credentials.reveal_totp(actor.token, str(account_id), record)
        return {"cuenta": str(account_id), "envoltorio": wrapped.token}
