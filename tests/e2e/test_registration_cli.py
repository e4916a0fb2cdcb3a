"""Issue 17, defects found on the way: ``personas alta`` and ``cambios aplicar`` through the real
``custodia`` executable, on a home of this module's own.

- A user name OpenBao would refuse is refused before anything is written, in Spanish; a name
  typed in upper case registers the login OpenBao stores (lower case).
- ``personas alta`` writes the ledger only after OpenBao created the login: a login that exists
  already (and is not opened by the password given) refuses the registration with nothing in
  the ledger, and the same command succeeds once the cause is gone. A ledger write that really
  fails (NATS killed right after the login is created) leaves a login that grants nothing, and
  the same command again completes the registration.
- ``cambios aplicar`` of a phone change without ``--valor`` is refused, nothing written.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from custody.app.access import Access
from custody.app.custodia import Actor
from custody.vault.client import VaultClient
from custody.vault.layout import OWN_PASSWORD_POLICY
from events.domain import Person
from events.jetstream import EventStoreUnavailableError, OutcomeUnknownError

from .conftest import SERVICE_PASSWORD
from .faults import (
    FaultWorld,
    build_instance,
    healed,
    kill_nats,
    ledger_events,
    restart_stack,
    serves,
    verifies,
)

pytestmark = pytest.mark.e2e

EXIT_USAGE, EXIT_CONFLICT = 2, 5


@pytest.fixture(scope="module")
def faults(fault_world_session: FaultWorld) -> FaultWorld:
    """The fault modules' shared world, its servers running again: ana (coadministrator),
    luis titular of DD05, bety designated for DD05; DD05-x with a confirmed password."""
    return healed(fault_world_session)


def alta(fw: FaultWorld, user: str, *extra: str, password: str | None = None) -> tuple[int, str]:
    """``custodia personas alta`` as ana for a secretaria named ``user``; (exit code, output)."""
    result = fw.world.run(
        "ana",
        "personas", "alta", "--usuario", user, "--nombre", "Persona de Prueba",
        "--correo", "prueba@iecm.mx", "--rol", "secretaria", "--password-stdin", "--json",
        *extra,
        stdin=(password or SERVICE_PASSWORD.format(user.strip().lower())) + "\n",
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    return result.returncode, result.stdout + result.stderr


def registered(fw: FaultWorld) -> list[str]:
    """The user names the ledger registered."""
    return [e.username for e in ledger_events(fw.world) if isinstance(e, Person.Registered)]


def logs_in(fw: FaultWorld, user: str, password: str | None = None) -> bool:
    anonymous = fw.root_vault().with_token(None)
    try:
        token = anonymous.login_userpass(user, password or SERVICE_PASSWORD.format(user))
    except Exception:
        return False
    anonymous.with_token(token).revoke_self()
    return True


def test_a_user_name_openbao_refuses_is_refused_in_spanish_with_nothing_written(
    faults: FaultWorld,
) -> None:
    """``--usuario ana@iecm``: a usage error (exit 2) in Spanish naming the rule; the ledger
    has no new message and OpenBao no such login (before: the ledger registered the person,
    then the OpenBao adapter refused the name: a person who never gets a login)."""
    before = faults.world.ledger_messages()
    code, output = alta(faults, "ana@iecm")
    assert code == EXIT_USAGE, output
    assert "El usuario no es válido para OpenBao" in output
    assert "No se registró nada" in output
    assert faults.world.ledger_messages() == before
    assert "ana@iecm" not in registered(faults)


def test_a_name_typed_in_upper_case_registers_the_login_openbao_stores(
    faults: FaultWorld,
) -> None:
    """``--usuario Carla`` registers ``carla`` in the ledger and a login ``carla`` that logs in
    (before: the ledger registered ``carla``, then the adapter refused ``Carla``)."""
    code, output = alta(faults, "Carla")
    assert code == 0, output
    assert json.loads(output)["usuario"] == "carla"
    assert "carla" in registered(faults)
    assert logs_in(faults, "carla")
    faults.world.login("carla")
    assert faults.world.call("carla", "sesion.quien")["roles"] == {"secretaria": None}


def test_a_login_that_exists_refuses_the_registration_before_the_ledger_and_a_retry_succeeds(
    faults: FaultWorld,
) -> None:
    """A login ``dora`` made outside Custodia with another password: OpenBao refuses to create
    it again (the service may only create logins), so ``personas alta --usuario dora`` fails
    with a Spanish conflict (exit 5) and the ledger registers nobody. Once an operator removes
    that login, the same command succeeds. (Before: the ledger registered dora first, the login
    was refused, and the retry conflicted with the ledger.)"""
    root = faults.root_vault()
    root.write("auth/userpass/users/dora", {"password": "otra-clave-ajena-1"}, operation="test")
    before = faults.world.ledger_messages()
    code, output = alta(faults, "dora")
    assert code == EXIT_CONFLICT, output
    assert "Ya existe en OpenBao un acceso con el usuario dora" in output
    assert faults.world.ledger_messages() == before
    assert "dora" not in registered(faults)
    assert logs_in(faults, "dora", "otra-clave-ajena-1")  # the existing login was not changed

    root.delete("auth/userpass/users/dora", operation="test")
    code, output = alta(faults, "dora")
    assert code == 0, output
    assert registered(faults).count("dora") == 1
    assert logs_in(faults, "dora")


class KillNatsAfterLogin(Access):
    """The real OpenBao adapter; NATS is killed right after the login is created."""

    def __init__(self, client: VaultClient, kill: Callable[[], object]) -> None:
        super().__init__(client)
        self.kill = kill

    def create_login(self, username: str, password: str) -> bool:
        created = super().create_login(username, password)
        self.kill()
        return created


def test_a_failed_ledger_write_leaves_a_login_granting_nothing_and_the_same_command_completes(
    faults: FaultWorld,
) -> None:
    """NATS dies between the login's creation and the ledger write (a second service instance
    in this process, so the moment can be reached): the registration fails; the login exists
    but its token has no policy beyond OpenBao's default and the service does not know the
    person. With the servers back, the same ``personas alta`` through the CLI succeeds (the
    login is adopted by its password), once, and the ledger verifies."""
    services = build_instance(faults)
    try:
        services.custodia.access = KillNatsAfterLogin(
            services.vault, lambda: kill_nats(faults.home, faults.bound)
        )
        actor = Actor("ana", faults.world.token("ana"))
        with pytest.raises((EventStoreUnavailableError, OutcomeUnknownError)):
            services.custodia.register_person(
                actor, "elena", name="Elena", email="elena@iecm.mx", phone=None,
                role="secretaria", district=None, password=SERVICE_PASSWORD.format("elena"),
            )  # fmt: skip
    finally:
        services.close()
        restart_stack(faults.home)
        serves(faults)
    assert "elena" not in registered(faults)
    anonymous = faults.root_vault().with_token(None)
    token = anonymous.login_userpass("elena", SERVICE_PASSWORD.format("elena"))
    info = anonymous.with_token(token).lookup_self()
    # OpenBao's default, and the login's own password (nothing else: custodia-contrasena-propia)
    assert set(info.policies) | set(info.identity_policies) <= {"default", OWN_PASSWORD_POLICY}
    anonymous.with_token(token).revoke_self()

    code, output = alta(faults, "elena")
    assert code == 0, output
    assert registered(faults).count("elena") == 1
    faults.world.login("elena")
    assert faults.world.call("elena", "sesion.quien")["roles"] == {"secretaria": None}
    verifies(faults.world)


def test_applying_a_phone_change_without_valor_is_refused_with_nothing_written(
    faults: FaultWorld,
) -> None:
    """An approved phone change whose detail is free text ("cambiar a 5554831501"): ``cambios
    aplicar`` without ``--valor`` is a Spanish usage error (exit 2) naming ``--valor``, the
    ledger unchanged and the request still approved; with ``--valor`` it is applied. (Before:
    the detail was taken as the new phone: "El teléfono no es un teléfono válido".)"""
    world = faults.world
    filed = world.call(
        "luis",
        "cambios.solicitar",
        {"cuenta": "DD05-x", "campo": "telefono", "detalle": "cambiar a 5554831501",
         "oficio": "DD05/017/2026"},
    )  # fmt: skip
    request = filed["solicitud"]
    world.call("ana", "cambios.aprobar", {"solicitud": request})
    before = world.ledger_messages()
    result = world.run("ana", "cambios", "aplicar", "--solicitud", request)
    assert result.returncode == EXIT_USAGE, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "--valor" in result.stderr
    assert "el teléfono" in result.stderr
    assert world.ledger_messages() == before
    states = {r["solicitud"]: r["estado"] for r in world.call("ana", "cambios.lista")}
    assert states[request] == "aprobada"

    result = world.run(
        "ana", "cambios", "aplicar", "--solicitud", request, "--valor", "5554831501", "--json"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["estado"] == "aplicada"
