"""Configuration-change requests (6.XI, 11.1; R3)."""

from __future__ import annotations

from uuid import UUID

import pytest

from events.domain import (
    AccountClosedError,
    AccountPolicyViolationError,
    ChangeNotRecordedError,
    ChangeRequest,
    ChangeRequestMismatchError,
    ChangeValueRequiredError,
    DistrictMismatchError,
    InvalidChoiceError,
    InvalidTransitionError,
    NotAllowedToReportError,
    NotCoadministratorError,
    OfficialChannel,
    Person,
)

from .domain_world import FINGERPRINT, OFICIO, POLICY, World, later, make_world

MEMO = OfficialChannel.email("titular.dd05@iecm.mx")


@pytest.fixture
def world() -> World:
    return make_world()


def file(
    world: World, field: str, *, by: Person | None = None, account: str = "DD05-x"
) -> ChangeRequest:
    return ChangeRequest.file(
        world.district,
        account,
        field,
        "Cambiar por pérdida del teléfono institucional",
        channel=MEMO,
        by=by or world.titular,
        at=later(10),
    )


def test_the_titular_or_the_administrator_files_requests(world: World) -> None:
    """6.XI: the district asks UTCSyD by vía oficial; the request starts `solicitada`."""
    request = file(world, "telefono")
    assert (request.status, request.district, request.account, request.field) == (
        "solicitada",
        "DD05",
        "DD05-x",
        "telefono",
    )
    assert request.channel == MEMO
    assert file(world, "Contrasena", by=world.ana).field == "contrasena"


@pytest.mark.parametrize("actor", ["secretaria", "beto", "other", "coadmin"])
def test_others_cannot_file_requests(world: World, actor: str) -> None:
    """Only the district's titular or its administrator file requests for it."""
    with pytest.raises(NotAllowedToReportError):
        file(world, "correo", by=getattr(world, actor))


def test_request_input_is_validated(world: World) -> None:
    """The field is one of the five; the account exists, is open and is the district's."""
    with pytest.raises(InvalidChoiceError):
        file(world, "foto de perfil")
    with pytest.raises(DistrictMismatchError):
        file(world, "correo", account="DD06-x")
    world.district.close_account("DD05-x", by=world.coadmin, channel=OFICIO, at=later(5))
    with pytest.raises(AccountClosedError):
        file(world, "correo")


def test_only_coadministrators_decide_and_only_once(world: World) -> None:
    """Approval and rejection are UTCSyD's, on a pending request; decisions are final."""
    request = file(world, "otro")
    with pytest.raises(NotCoadministratorError):
        request.approve(by=world.titular, at=later(11))
    request.reject(by=world.coadmin, at=later(11), reason="Sin justificación")
    assert (request.status, request.decided_by, request.decision_reason) == (
        "rechazada",
        world.coadmin.id,
        "Sin justificación",
    )
    with pytest.raises(InvalidTransitionError) as raised:
        request.approve(by=world.coadmin, at=later(12))
    assert (raised.value.state, raised.value.action) == ("rechazada", "approve")


def test_nothing_is_applied_without_approval(world: World) -> None:
    """11.1.b: a pending or rejected request cannot be applied, neither on the request nor on
    the district."""
    pending = file(world, "correo")
    with pytest.raises(InvalidTransitionError):
        pending.apply(world.district, by=world.coadmin, at=later(11))
    with pytest.raises(InvalidTransitionError):
        world.district.change_account_setting(
            pending, "nuevo.dd05@iecm.mx", by=world.coadmin, at=later(11)
        )
    assert world.district.account("DD05-x").email == "dd05.x@iecm.mx"


def test_an_approved_setting_change_is_recorded_on_the_district_then_applied(world: World) -> None:
    """The district records the new e-mail under the request; then the request is applied."""
    request = file(world, "correo")
    request.approve(by=world.coadmin, at=later(11))
    with pytest.raises(ChangeNotRecordedError):
        request.apply(world.district, by=world.coadmin, at=later(12))
    with pytest.raises(NotCoadministratorError):
        world.district.change_account_setting(
            request, "nuevo.dd05@iecm.mx", by=world.ana, at=later(12)
        )
    with pytest.raises(AccountPolicyViolationError):
        world.district.change_account_setting(
            request, "dd05@gmail.com", by=world.coadmin, at=later(12)
        )
    world.district.change_account_setting(
        request, "Nuevo.DD05@IECM.MX", by=world.coadmin, at=later(12)
    )
    with pytest.raises(ChangeRequestMismatchError):  # one request, one change
        world.district.change_account_setting(
            request, "otro.dd05@iecm.mx", by=world.coadmin, at=later(13)
        )
    request.apply(world.district, by=world.coadmin, at=later(13))
    assert request.status == "aplicada"
    assert world.district.account("DD05-x").email == "Nuevo.DD05@iecm.mx"
    with pytest.raises(InvalidTransitionError):
        world.district.change_account_setting(
            request, "otro.dd05@iecm.mx", by=world.coadmin, at=later(14)
        )


@pytest.mark.parametrize("field", ["correo", "telefono", "usuario"])
@pytest.mark.parametrize("value", [None, "", "  "])
def test_a_setting_change_needs_its_new_value(world: World, field: str, value: str | None) -> None:
    """Issue 17: an e-mail, phone or handle change is applied only with the new value; the
    request's free-text detail is never taken for it, and nothing is recorded without it."""
    request = file(world, field)
    request.approve(by=world.coadmin, at=later(11))
    version = world.district.version
    with pytest.raises(ChangeValueRequiredError) as raised:
        world.district.change_account_setting(request, value, by=world.coadmin, at=later(12))
    assert raised.value.field == field
    assert world.district.version == version


def test_a_password_change_request_is_a_rotation(world: World) -> None:
    """6.XI: a password changed under an approved request is a confirmed rotation: it fulfils
    obligations, and the applied request records the new version."""
    world.district.designate(
        world.beto, by=world.titular, channel=OFICIO, policy=POLICY, at=later(5)
    )
    request = file(world, "contrasena")
    request.approve(by=world.coadmin, at=later(11))
    world.district.start_rotation(
        "DD05-x", version=2, fingerprint=FINGERPRINT, by=world.coadmin, at=later(12)
    )
    fulfilled = world.district.confirm_rotation(
        "DD05-x", version=2, by=world.coadmin, at=later(13), change_request=request
    )
    assert len(fulfilled) == 1
    request.apply(world.district, by=world.coadmin, at=later(14))
    assert (request.status, request.rotation_version) == ("aplicada", 2)
    confirmed = [
        e for e in world.district.collect_events() if type(e).__name__ == "RotationConfirmed"
    ]
    assert confirmed[-1].change_request_id == request.id  # type: ignore[attr-defined]


def test_a_rotation_cannot_use_a_request_for_something_else(world: World) -> None:
    """The request must be an approved password change of that very account."""
    phone = file(world, "telefono")
    phone.approve(by=world.coadmin, at=later(11))
    world.district.start_rotation(
        "DD05-x", version=2, fingerprint=FINGERPRINT, by=world.coadmin, at=later(12)
    )
    with pytest.raises(ChangeRequestMismatchError):
        world.district.confirm_rotation(
            "DD05-x", version=2, by=world.coadmin, at=later(13), change_request=phone
        )
    other_account = file(world, "contrasena", account="DD05-facebook")
    other_account.approve(by=world.coadmin, at=later(11))
    with pytest.raises(ChangeRequestMismatchError):
        world.district.confirm_rotation(
            "DD05-x", version=2, by=world.coadmin, at=later(13), change_request=other_account
        )
    assert world.district.account("DD05-x").current_version == 1


def test_a_request_for_something_else_is_applied_on_its_own(world: World) -> None:
    """`otro` changes are outside the district's records: applying needs only the approval."""
    request = file(world, "otro")
    request.approve(by=world.coadmin, at=later(11), reason="Procede")
    request.apply(world.district, by=world.coadmin, at=later(12))
    assert request.status == "aplicada"
    with pytest.raises(InvalidTransitionError):
        request.apply(world.district, by=world.coadmin, at=later(13))


def test_requests_carry_the_id_they_are_given(world: World) -> None:
    """The application service may choose the id (for idempotent retries)."""
    request_id = UUID("00000000-0000-4000-8000-000000000001")
    request = ChangeRequest.file(
        world.district,
        "DD05-x",
        "otro",
        "Actualizar biografía",
        channel=MEMO,
        by=world.titular,
        at=later(10),
        request_id=request_id,
    )
    assert request.id == request_id
