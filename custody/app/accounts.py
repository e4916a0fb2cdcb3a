"""Use cases of an account's life (10.I–VIII; issue 19): :class:`Accounts`, its registration
(``cuentas alta``) and ``cuentas lista``; the request to open it and UTCSyD's decision
(``cuentas solicitar``, ``cuentas alta --solicitud``, ``cuentas rechazar``), its settings as
found on the platform (``cuentas estado``) and its closure (``cuentas baja``).

**Closure, and the order of the writes.** OpenBao is asked first, with the caller's own token,
whether the caller may destroy the account's secrets (the ``destruir`` marker): a refused caller
records nothing. Then:

- ledger: ``AccountClosed`` (the final record; a staged rotation abandoned, obligations
  withdrawn) — from here no reveal, code or rotation is possible (``AccountClosedError``);
- OpenBao: the credential's metadata deleted (every version, current and staged: KV v2
  ``delete metadata``, nothing left to undelete) and the TOTP engine's key deleted;
- ledger: ``AccountSecretsDestroyed``.

A failure between the two records leaves the closure recorded and the destruction *pending*,
which the ledger shows (no ``AccountSecretsDestroyed``; ``cuentas lista``:
``destruccion_pendiente``) and the command reports as an error
(:class:`~custody.errors.AccountDestructionPendingError`), never as done. ``cuentas baja`` again
on that account finishes it: OpenBao's deletes are idempotent, and the second record is made
once.
"""

from __future__ import annotations

from typing import Any, Final
from uuid import uuid5

import structlog

from custody.app.base import REQUEST_NAMESPACE, Actor, ScopeError, UseCases
from custody.errors import AccountDestructionPendingError
from events.domain import (
    AccountOpeningRequest,
    DistrictId,
    parse_account_id,
    parse_district_id,
)
from events.domain.official_channel import OfficialChannel
from events.domain.person import require_coadministrator
from events.errors import VaultError

log = structlog.get_logger("custodia.accounts")

# What only a person on the platform can do when an account is closed (10; 11.1.a): Custodia
# destroys what it keeps, the platform keeps sessions, roles and recovery data.
CLOSURE_CHECKLIST: Final[tuple[str, ...]] = (
    "Cerrar todas las demás sesiones abiertas de la cuenta en la plataforma "
    "(Configuración › Seguridad › Sesiones activas).",
    "Retirar los roles y accesos de la página o cuenta (administradores, editores, "
    "anunciantes) y las aplicaciones de terceros conectadas.",
    "Retirar o sustituir el correo de recuperación de la cuenta; la UTCSyD gestiona la baja "
    "del buzón institucional asociado.",
    "Retirar el teléfono de recuperación y el segundo factor de la cuenta en la plataforma.",
    "Desactivar o eliminar la cuenta en la plataforma conforme a la vía oficial de la baja.",
    "Informar a la UTCSyD (redessociales@iecm.mx) que la baja quedó completa en la plataforma.",
)


def record_status(
    custodia: Accounts,
    actor: Actor,
    account: str,
    *,
    public: bool | None,
    direct_messages: bool | None,
    phone: str | None,
) -> dict[str, Any]:
    """10.V, 10.VI, 11.1.a: records the account's settings as a coadministrator found them on
    the platform; what is not given keeps its last recorded value. A missing phone, or one
    outside the policy's institutional numbering, is a violation."""
    account_id = parse_account_id(account)
    by = custodia.person(actor.username)
    require_coadministrator(by, "record account status")
    policy = custodia.policy
    with custodia.ledger.lock(str(account_id.district)):
        district = custodia.district(account_id.district)
        current = district.open_account(str(account_id))
        violations = district.record_account_status(
            str(account_id),
            public=current.public if public is None else public,
            direct_messages=current.direct_messages if direct_messages is None else direct_messages,
            phone=phone,
            phone_prefixes=policy.institutional_phone_prefixes,
            by=by,
            at=custodia.clock(),
        )
        custodia.ledger.save(district)
        current = district.account(str(account_id))
    log.info("cuenta_estado", cuenta=str(account_id), violaciones=list(violations))
    return {
        "cuenta": str(account_id),
        "publica": current.public,
        "mensajes": current.direct_messages,
        "telefono": current.phone,
        "violaciones": [str(v) for v in violations],
    }


def close(
    custodia: Accounts, actor: Actor, account: str, channel: OfficialChannel
) -> dict[str, Any]:
    """10: closes the account (the final record), then destroys its password and 2FA seed in
    OpenBao and records that; a closure whose destruction is pending is finished instead."""
    account_id = parse_account_id(account)
    name = str(account_id)
    by = custodia.person(actor.username)
    require_coadministrator(by, "close accounts")
    # OpenBao decides first, with the caller's token: a refused caller records nothing.
    custodia.credentials.authorize_destruction(actor.token, name)
    with custodia.ledger.lock(str(account_id.district)):
        district = custodia.district(account_id.district)
        resumed = name in district.accounts and district.destruction_pending(name)
        if not resumed:  # an open account closes; a closed and destroyed one is refused
            district.close_account(name, by=by, channel=channel, at=custodia.clock())
            custodia.ledger.save(district)
        try:
            custodia.credentials.destroy(actor.token, name)
        except VaultError as error:
            # The closure stands; the ledger shows the destruction pending (no second record).
            log.warning("cuenta_destruccion_pendiente", cuenta=name, error=type(error).__name__)
            raise AccountDestructionPendingError(name, type(error).__name__) from None
        district.record_secrets_destroyed(name, by=by, at=custodia.clock())
        custodia.ledger.save(district)
    log.info("cuenta_cerrada", cuenta=name, reanudada=resumed)
    return {
        "cuenta": name,
        "cerrada": True,
        "secretos_destruidos": True,
        "reanudada": resumed,
        "lista_verificacion": list(CLOSURE_CHECKLIST),
    }


def destruction_pending(custodia: Accounts, account: str) -> bool:
    """Whether ``account`` is closed in the ledger with its secrets not yet destroyed."""
    account_id = parse_account_id(account)
    district = custodia.district(account_id.district)
    return str(account_id) in district.accounts and district.destruction_pending(str(account_id))


# -- requests to open accounts (10.I–III) -----------------------------------------------------


def _request(custodia: Accounts, identifier: str) -> AccountOpeningRequest:
    return custodia.ledger.find(AccountOpeningRequest, identifier, "solicitud")


def _request_row(custodia: Accounts, request: AccountOpeningRequest) -> dict[str, Any]:
    return {
        "solicitud": str(request.id),
        "distrito": request.district,
        "plataforma": request.platform,
        "motivo": request.reason,
        "via_oficial": str(request.channel),
        "estado": request.status,
        "solicitada_por": custodia.username_of(request.filed_by),
        "cuenta": request.account,
        "decidida_por": custodia.username_of(request.decided_by) if request.decided_by else None,
        "motivo_decision": request.decision_reason,
    }


def request_opening(
    custodia: Accounts,
    actor: Actor,
    district: str,
    platform: str,
    reason: str,
    channel: OfficialChannel,
    request_id: str,
) -> dict[str, Any]:
    """10.II–III: the district's titular asks UTCSyD, by vía oficial, to open an account."""
    by, item = custodia.ledger.person_and_district(actor.username, parse_district_id(district))
    request = AccountOpeningRequest.file(
        item,
        platform,
        reason,
        channel=channel,
        by=by,
        at=custodia.clock(),
        request_id=uuid5(REQUEST_NAMESPACE, f"cuenta:{request_id}"),
    )
    custodia.ledger.save(request)
    log.info("cuenta_solicitada", solicitud=str(request.id), distrito=request.district)
    return _request_row(custodia, request)


def register_requested(
    custodia: Accounts,
    actor: Actor,
    request_id: str,
    account: str,
    *,
    handle: str,
    email: str,
    phone: str | None,
    public: bool,
    direct_messages: bool,
) -> dict[str, Any]:
    """10.I: UTCSyD finds the request viable and registers the account under it: the account
    and the approval are recorded in one save (both or neither)."""
    account_id = parse_account_id(account)
    by = custodia.person(actor.username)
    require_coadministrator(by, "decide account requests")
    with custodia.ledger.lock(str(account_id.district)):
        request = _request(custodia, request_id)
        district = custodia.district(account_id.district)
        now = custodia.clock()
        violations = district.register_account(
            str(account_id),
            handle=handle,
            email=email,
            phone=phone,
            public=public,
            direct_messages=direct_messages,
            by=by,
            at=now,
        )
        request.approve(district, str(account_id), by=by, at=now)
        custodia.ledger.save(district, request)
    return {**_request_row(custodia, request), "violaciones": [str(v) for v in violations]}


def reject_request(
    custodia: Accounts, actor: Actor, request_id: str, reason: str
) -> dict[str, Any]:
    """10.I: UTCSyD finds opening the account not viable."""
    by = custodia.person(actor.username)
    request = _request(custodia, request_id)
    request.reject(reason, by=by, at=custodia.clock())
    custodia.ledger.save(request)
    return _request_row(custodia, request)


def list_requests(custodia: Accounts, actor: Actor, state: str | None) -> list[dict[str, Any]]:
    """The requests the caller may see (UTCSyD and the secretaria: all; a titular: theirs)."""
    by = custodia.person(actor.username)
    return [
        _request_row(custodia, r)
        for r in custodia.ledger.all_of(AccountOpeningRequest)
        if custodia.may_see_district(by, r.district) and (not state or r.status == state)
    ]


class Accounts(UseCases):
    """An account registered in its district, and the accounts a person may see."""

    def register_account(
        self,
        actor: Actor,
        account: str,
        *,
        handle: str,
        email: str,
        phone: str | None,
        public: bool,
        direct_messages: bool,
        existing: bool,
    ) -> dict[str, Any]:
        account_id = parse_account_id(account)
        by = self.ledger.person(actor.username)
        with self.ledger.lock(str(account_id.district)):
            district = self.ledger.district(account_id.district)
            violations = district.register_account(
                str(account_id),
                handle=handle,
                email=email,
                phone=phone,
                public=public,
                direct_messages=direct_messages,
                existing=existing,
                by=by,
                at=self.clock(),
            )
            self.ledger.save(district)
        return {"cuenta": str(account_id), "violaciones": [str(v) for v in violations]}

    def list_accounts(self, actor: Actor, district: str | None) -> list[dict[str, Any]]:
        by = self.ledger.person(actor.username)
        codes = [parse_district_id(district)] if district else DistrictId.all()
        rows = []
        for code in codes:
            if not self.may_see_district(by, str(code)):
                if district:
                    raise ScopeError(actor.username, str(code))
                continue
            item = self.ledger.district(code)
            for acc in item.accounts.values():
                rows.append(
                    {
                        "cuenta": acc.account_id,
                        "distrito": item.code,
                        "plataforma": acc.platform,
                        "usuario": acc.handle,
                        "correo": acc.email,
                        "publica": acc.public,
                        "mensajes": acc.direct_messages,
                        "violaciones": list(acc.violations),
                        "abierta": acc.is_open,
                        # 10: closed in the ledger, its secrets not yet destroyed in OpenBao.
                        "destruccion_pendiente": item.destruction_pending(acc.account_id),
                        "version": acc.current_version,
                        "version_preparada": acc.staged_version,
                        "totp": acc.totp_registered,
                        "obligaciones_abiertas": len(item.open_obligations(acc.account_id)),
                    }
                )
        return rows
