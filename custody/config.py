"""Custodia's configuration: every ``CUSTODIA_*`` environment variable, read here and only here.

:data:`VARIABLES` lists them all, each with its meaning and default in Spanish; the README's
"Configuración" table is rendered from it (``python -m custody.config``) and a unit test checks
the README against it, and that no other module reads a ``CUSTODIA_`` variable. Everything else
receives a value built here: :class:`Settings` (data directory and servers), :class:`NoticeSettings`
(e-mail notices), :class:`ServiceTimings` (the service's periodic passes), and a few single
readers (:func:`home`, :func:`policy_file`, :func:`session_file`, :func:`fixed_port`,
:func:`log_level`). Bad values fail fast with a :class:`ConfigurationError` naming the variable.

This module imports only the standard library and ``events.errors``: the thin command line
imports it for every command.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from events.errors import ConfigurationError

PREFIX = "CUSTODIA_"


@dataclass(frozen=True)
class Variable:
    """One ``CUSTODIA_*`` variable: its name without the prefix, meaning and default (Spanish,
    for the README)."""

    name: str
    meaning: str
    default: str = "—"

    @property
    def key(self) -> str:
        """The full environment variable name, ``CUSTODIA_<name>``."""
        return PREFIX + self.name

    def raw(self, env: Mapping[str, str] | None = None) -> str | None:
        """The value in ``env`` (the process environment by default), stripped; ``None`` when
        unset or blank."""
        source = os.environ if env is None else env
        value = source.get(self.key, "").strip()
        return value or None


HOME = Variable("HOME", "directorio de datos", "`~/.local/share/custodia`")
NATS_URL = Variable(
    "NATS_URL", "un NATS externo (clúster: los nodos separados por comas)", "embebido"
)
NATS_CREDS = Variable("NATS_CREDS", "archivo de credenciales de un NATS externo")
NATS_USER = Variable("NATS_USER", "usuario de un NATS externo")
NATS_PASSWORD = Variable("NATS_PASSWORD", "contraseña de un NATS externo")
NATS_CA = Variable("NATS_CA", "CA (TLS) de un NATS externo")
NATS_REPLICAS = Variable("NATS_REPLICAS", "réplicas de los flujos (3 en un clúster)", "1")
VAULT_ADDR = Variable(
    "VAULT_ADDR",
    "un OpenBao/Vault externo; varias direcciones separadas por comas para los miembros de un"
    " clúster HA",
    "embebido",
)
VAULT_CACERT = Variable("VAULT_CACERT", "CA (TLS) de un OpenBao/Vault externo")
VAULT_TOKEN = Variable(
    "VAULT_TOKEN", "token administrativo, solo para `init` y `servicio` con un OpenBao externo"
)
POLITICA = Variable("POLITICA", "archivo TOML de política (abajo)", "valores integrados")
SESION = Variable(
    "SESION", "archivo de la sesión (varias personas en una máquina)", "`CUSTODIA_HOME/sesion.json`"
)
NATS_PORT = Variable("NATS_PORT", "puerto fijo del NATS embebido", "un puerto libre")
VAULT_PORT = Variable("VAULT_PORT", "puerto fijo del OpenBao embebido", "un puerto libre")
CHECKPOINT_EVENTS = Variable(
    "CHECKPOINT_EVENTS", "cada cuántas entradas se firma un punto de control", "1000"
)
CHECKPOINT_SECONDS = Variable(
    "CHECKPOINT_SECONDS", "cada cuántos segundos se firma un punto de control", "10"
)
CHECKPOINT_QUIET_SECONDS = Variable(
    "CHECKPOINT_QUIET_SECONDS",
    "tras cuántos segundos sin escrituras se firma el final de la bitácora",
    "1",
)
OPENBAO_AUDIT_LOG = Variable(
    "OPENBAO_AUDIT_LOG",
    "el archivo del dispositivo de auditoría de OpenBao que el servicio sigue (lecturas no"
    " registradas)",
    "el del OpenBao embebido",
)
ALERTAS_SECONDS = Variable(
    "ALERTAS_SECONDS",
    "cada cuántos segundos el servicio revisa las alertas del firmante de la bitácora",
    "5",
)
SMTP_URL = Variable(
    "SMTP_URL",
    "servidor de correo para los avisos (`smtp://host:puerto`, `smtps://…`, con `usuario:clave@`"
    " si pide autenticación; la clave nunca se registra)",
    "sin envío: los avisos quedan pendientes en `avisos lista`",
)
CORREO_REMITENTE = Variable("CORREO_REMITENTE", "remitente de los avisos", "`custodia@localhost`")
CORREO_SECRETARIA = Variable(
    "CORREO_SECRETARIA",
    "buzón institucional de la Secretaría Ejecutiva",
    "— (sus avisos quedan pendientes, `sin_destinatario`)",
)
CORREO_UTCSYD = Variable(
    "CORREO_UTCSYD",
    "buzón institucional de la UTCSyD",
    "— (sus avisos quedan pendientes, `sin_destinatario`)",
)
CORREO_TITULAR = Variable(
    "CORREO_TITULAR",
    "buzón de la titularidad de cada distrito, con `{distrito}` (p. ej."
    " `titular.{distrito}@iecm.mx`); los correos personales están sellados en OpenBao y el"
    " servicio de lectura no los abre",
)
AVISOS_ESPERA_MAXIMA = Variable(
    "AVISOS_ESPERA_MAXIMA",
    "espera máxima (segundos) entre reintentos de un aviso mientras el servidor de correo no"
    " responde (1, 2, 4… s)",
    "300",
)
AVANCE_SECONDS = Variable(
    "AVANCE_SECONDS",
    "cada cuántos segundos el servicio registra ausencias que empiezan o terminan y devuelve los"
    " grupos de OpenBao a quien la bitácora designa",
    "30",
)
LOG_LEVEL = Variable(
    "LOG_LEVEL", "nivel del registro estructurado (JSON fuera de una terminal)", "`WARNING`"
)
PORT_PARTITION = Variable(
    "PORT_PARTITION",
    "`i/n`: los servidores embebidos escuchan solo en puertos `p` con `p % n == i` (las pruebas"
    " dan a cada proceso los suyos)",
    "todos",
)

VARIABLES: tuple[Variable, ...] = (
    HOME,
    NATS_URL,
    NATS_CREDS,
    NATS_USER,
    NATS_PASSWORD,
    NATS_CA,
    NATS_REPLICAS,
    VAULT_ADDR,
    VAULT_CACERT,
    VAULT_TOKEN,
    POLITICA,
    SESION,
    NATS_PORT,
    VAULT_PORT,
    CHECKPOINT_EVENTS,
    CHECKPOINT_SECONDS,
    CHECKPOINT_QUIET_SECONDS,
    OPENBAO_AUDIT_LOG,
    ALERTAS_SECONDS,
    SMTP_URL,
    CORREO_REMITENTE,
    CORREO_SECRETARIA,
    CORREO_UTCSYD,
    CORREO_TITULAR,
    AVISOS_ESPERA_MAXIMA,
    AVANCE_SECONDS,
    LOG_LEVEL,
    PORT_PARTITION,
)


def markdown_table() -> str:
    """The README's table of variables (section "Configuración"), one row per variable."""
    lines = ["| variable | significado | predeterminado |", "|---|---|---|"]
    lines += [f"| `{v.key}` | {v.meaning} | {v.default} |" for v in VARIABLES]
    return "\n".join(lines) + "\n"


# -- single readers ---------------------------------------------------------------------------


def home(env: Mapping[str, str] | None = None) -> Path:
    """``CUSTODIA_HOME``, else ``$HOME/.local/share/custodia``."""
    source = os.environ if env is None else env
    text = HOME.raw(source)
    if text:
        return Path(text).expanduser()
    return Path(source.get("HOME", str(Path.home()))) / ".local" / "share" / "custodia"


def _existing_file(variable: Variable, env: Mapping[str, str] | None) -> Path | None:
    text = variable.raw(env)
    if text is None:
        return None
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigurationError(variable.key, "file not found")
    return path


def policy_file(env: Mapping[str, str] | None = None) -> Path | None:
    """``CUSTODIA_POLITICA``: the policy file (it must exist), or ``None`` for the defaults."""
    return _existing_file(POLITICA, env)


def session_file(home_dir: Path, env: Mapping[str, str] | None = None) -> Path:
    """``CUSTODIA_SESION``, else ``sesion.json`` in ``home_dir``."""
    text = SESION.raw(env)
    return Path(text).expanduser() if text else home_dir / "sesion.json"


def fixed_port(variable: Variable, env: Mapping[str, str] | None = None) -> int | None:
    """``CUSTODIA_NATS_PORT`` / ``CUSTODIA_VAULT_PORT``: a fixed port, or ``None`` (a free one)."""
    text = variable.raw(env)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigurationError(variable.key, "must be a port number") from None


def port_partition(env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """``CUSTODIA_PORT_PARTITION`` as ``(i, n)``; ``(0, 1)`` (every port) when unset or
    malformed."""
    share, _, shares = (PORT_PARTITION.raw(env) or "").partition("/")
    try:
        i, n = int(share), int(shares)
    except ValueError:
        return 0, 1
    return (i, n) if 0 <= i < n else (0, 1)


def log_level(env: Mapping[str, str] | None = None) -> str:
    """``CUSTODIA_LOG_LEVEL`` upper-cased, ``WARNING`` by default."""
    return (LOG_LEVEL.raw(env) or "WARNING").upper()


def audit_log(env: Mapping[str, str] | None = None) -> Path | None:
    """``CUSTODIA_OPENBAO_AUDIT_LOG``: the OpenBao audit log to follow, when set."""
    text = OPENBAO_AUDIT_LOG.raw(env)
    return Path(text) if text else None


def _positive_float(variable: Variable, env: Mapping[str, str] | None, default: float) -> float:
    """A positive number; an unset, unreadable or non-positive value gives ``default``."""
    text = variable.raw(env)
    try:
        value = float(text) if text else default
    except ValueError:
        return default
    return value if value > 0 else default


def _number(variable: Variable, env: Mapping[str, str] | None, default: float) -> float:
    text = variable.raw(env)
    try:
        return float(text) if text else default
    except ValueError:
        raise ConfigurationError(variable.key, "not a number") from None


# -- the service's periodic passes ------------------------------------------------------------

ADVANCE_SECONDS = 30.0
ALERT_POLL_SECONDS = 5.0


@dataclass(frozen=True)
class ServiceTimings:
    """How often the service's background passes run."""

    advance_seconds: float = ADVANCE_SECONDS
    alert_poll_seconds: float = ALERT_POLL_SECONDS
    checkpoint_events: int = 1000
    checkpoint_seconds: float = 10.0
    checkpoint_quiet_seconds: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceTimings:
        events_text = CHECKPOINT_EVENTS.raw(env)
        try:
            every_events = int(events_text) if events_text else 1000
        except ValueError:
            raise ConfigurationError(CHECKPOINT_EVENTS.key, "must be a whole number") from None
        return cls(
            # A bad interval for these two falls back to the default: the service keeps running.
            advance_seconds=_positive_float(AVANCE_SECONDS, env, ADVANCE_SECONDS),
            alert_poll_seconds=_positive_float(ALERTAS_SECONDS, env, ALERT_POLL_SECONDS),
            checkpoint_events=every_events,
            checkpoint_seconds=_number(CHECKPOINT_SECONDS, env, 10.0),
            checkpoint_quiet_seconds=_number(CHECKPOINT_QUIET_SECONDS, env, 1.0),
        )


# -- servers and data directory ---------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Where Custodia keeps its data and which servers it talks to."""

    home: Path
    nats_url: str | None = None
    nats_creds: Path | None = None
    vault_addr: str | None = None
    vault_token: str | None = None
    policy_file: Path | None = None
    nats_user: str | None = None
    nats_password: str | None = None
    nats_ca: Path | None = None
    vault_ca: Path | None = None
    replicas: int = 1

    def __repr__(self) -> str:  # the admin token never reaches a log line
        return (
            f"Settings(home={self.home!s}, nats_url={self.nats_url}, vault_addr={self.vault_addr},"
            f" policy_file={self.policy_file})"
        )

    @property
    def embedded_nats(self) -> bool:
        return self.nats_url is None

    @property
    def embedded_vault(self) -> bool:
        return self.vault_addr is None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        nats_url = NATS_URL.raw(source)
        if nats_url and not nats_url.startswith(("nats://", "tls://", "ws://", "wss://")):
            raise ConfigurationError(NATS_URL.key, "must start with nats:// or tls://")
        vault_addr = VAULT_ADDR.raw(source)
        if vault_addr:
            # One address, or several separated by commas (members of an OpenBao HA cluster:
            # the client moves to the next when one cannot be reached).
            addrs = [a.strip().rstrip("/") for a in vault_addr.split(",")]
            if not all(a.startswith(("http://", "https://")) for a in addrs):
                raise ConfigurationError(
                    VAULT_ADDR.key, "must start with http:// or https:// (each address)"
                )
            vault_addr = ",".join(addrs)
        creds = _existing_file(NATS_CREDS, source)
        policy = policy_file(source)
        replicas_text = NATS_REPLICAS.raw(source) or "1"
        if replicas_text not in ("1", "3", "5"):
            raise ConfigurationError(NATS_REPLICAS.key, "must be 1, 3 or 5")
        ca = _existing_file(NATS_CA, source)
        vault_ca = _existing_file(VAULT_CACERT, source)
        return cls(
            nats_user=NATS_USER.raw(source),
            nats_password=NATS_PASSWORD.raw(source),
            nats_ca=ca,
            vault_ca=vault_ca,
            replicas=int(replicas_text),
            home=home(source),
            nats_url=nats_url,
            nats_creds=creds,
            vault_addr=vault_addr.rstrip("/") if vault_addr else None,
            vault_token=VAULT_TOKEN.raw(source),
            policy_file=policy,
        )


# -- e-mail notices (issue 19) ----------------------------------------------------------------

FIRST_RETRY_S = 1.0
MAX_RETRY_S = 300.0


def smtp_default_port(scheme: str) -> int:
    return 465 if scheme == "smtps" else 25


@dataclass(frozen=True)
class NoticeSettings:
    """Where notices go: the SMTP server, the sender, the role mailboxes."""

    smtp_url: str | None = field(default=None, repr=False)  # may hold a password
    sender: str = "custodia@localhost"
    mailboxes: Mapping[str, str] = field(default_factory=dict)
    titular_pattern: str | None = None
    max_retry_s: float = MAX_RETRY_S

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NoticeSettings:
        url = SMTP_URL.raw(env)
        if url and urlsplit(url).scheme not in ("smtp", "smtps"):
            raise ConfigurationError(SMTP_URL.key, "must start with smtp:// or smtps://")
        pattern = CORREO_TITULAR.raw(env)
        if pattern and "{distrito}" not in pattern:
            raise ConfigurationError(CORREO_TITULAR.key, "must contain {distrito}")
        max_retry = _number(AVISOS_ESPERA_MAXIMA, env, MAX_RETRY_S)
        mailboxes = {
            role: value
            for role, value in (
                ("secretaria", CORREO_SECRETARIA.raw(env)),
                ("utcsyd", CORREO_UTCSYD.raw(env)),
            )
            if value
        }
        return cls(
            smtp_url=url,
            sender=CORREO_REMITENTE.raw(env) or "custodia@localhost",
            mailboxes=mailboxes,
            titular_pattern=pattern,
            max_retry_s=max(max_retry, FIRST_RETRY_S),
        )

    def address(self, recipient: str) -> str | None:
        """The mailbox of a recipient role (``titular:DD05`` by the pattern), or ``None``."""
        role, _, district = recipient.partition(":")
        if role == "titular":
            return self.titular_pattern.format(distrito=district) if self.titular_pattern else None
        return self.mailboxes.get(role)

    @property
    def server(self) -> str | None:
        """The SMTP server as logs may show it: scheme, host and port, no credentials."""
        if not self.smtp_url:
            return None
        parts = urlsplit(self.smtp_url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or smtp_default_port(parts.scheme)}"

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1``: 1, 2, 4… up to the maximum."""
        return float(min(self.max_retry_s, FIRST_RETRY_S * 2 ** max(attempts - 1, 0)))


if __name__ == "__main__":  # python -m custody.config: the README's table
    print(markdown_table(), end="")
