"""Change requests (6.XI, 11.1): a change to an account's settings arrives by a vía oficial, is
approved or rejected, and only an approved one is applied; a password change is applied as a
rotation (:meth:`custody.app.credential_use.CredentialUse.confirm_rotation` with
``--solicitud``).
"""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import uuid5

from custody.app.base import REQUEST_NAMESPACE, Actor
from custody.app.credential_use import CredentialUse
from events.domain import ChangeRequest, parse_account_id
from events.domain.official_channel import OfficialChannel

RequestT = TypeVar("RequestT")


class ChangeRequests(CredentialUse):
    """A change to an account's settings, requested, decided and applied."""

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
        by, district = self.ledger.person_and_district(actor.username, account_id.district)
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
        by = self.ledger.person(actor.username)
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
        by = self.ledger.person(actor.username)
        request = self._change_request(identifier)
        if request.field == "contrasena":
            self.confirm_rotation(actor, request.account, identifier)
            return self._change_request_row(self._change_request(identifier))
        account_id = parse_account_id(request.account)
        with self.ledger.lock(str(account_id.district)):
            district = self.ledger.district(account_id.district)
            now = self.clock()
            district.change_account_setting(request, value, by=by, at=now)
            request.apply(district, by=by, at=now)
            self.ledger.save(district, request)
        return self._change_request_row(request)

    def list_change_requests(self, actor: Actor, state: str | None) -> list[dict[str, Any]]:
        by = self.ledger.person(actor.username)
        rows = []
        for request in self.ledger.all_of(ChangeRequest):
            if not self.may_see_district(by, request.district):
                continue
            if state and request.status != state:
                continue
            rows.append(self._change_request_row(request))
        return rows
