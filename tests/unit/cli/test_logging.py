"""The redaction processor removes secrets from every log line."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from cli import logging as custodia_logging

TOKEN = "s.Q3JlZGVudGlhbGVzU2VjcmV0YXMxMjM0NTY"
UNSEAL = "kJd8nq0X1m2Yb3TzA9cVwE5rH7uI2oP4sL6fG8hJ0kQ="
PASSWORD = "Xy7!pass-Word_2026"
OTPAUTH = "otpauth://totp/IECM:dd05?secret=JBSWY3DPEHPK3PXP&issuer=IECM"


@pytest.fixture(autouse=True)
def _fresh_structlog() -> None:
    structlog.reset_defaults()


def _render(**event: object) -> str:
    stream = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(stream),
        processors=custodia_logging.processors(json_output=True),
        wrapper_class=structlog.BoundLogger,
    )
    logger.info("evento", **event)
    return stream.getvalue()


@pytest.mark.parametrize(
    ("key", "value", "secret"),
    [
        ("contrasena", PASSWORD, PASSWORD),
        ("password", PASSWORD, PASSWORD),
        ("client_token", TOKEN, TOKEN),
        ("detalle", f"the token is {TOKEN} ok", TOKEN),
        ("keys", {"unseal_key": UNSEAL}, UNSEAL),
        ("nota", f"llave {UNSEAL}", UNSEAL),
        ("uri", OTPAUTH, "JBSWY3DPEHPK3PXP"),
        ("mensaje", f"password={PASSWORD}", PASSWORD),
        ("lista", [f"contraseña: {PASSWORD}"], PASSWORD),
        ("error", ValueError(f"bad token {TOKEN}"), TOKEN),
    ],
)
def test_secret_never_reaches_the_rendered_line(key: str, value: object, secret: str) -> None:
    """Whatever key or shape carries a secret, the rendered JSON line does not contain it."""
    line = _render(**{key: value})
    assert secret not in line
    assert custodia_logging.REDACTED in line


def test_facts_survive_redaction() -> None:
    """Versions, fingerprints, accounts and ids are facts, not secrets: they stay readable."""
    line = json.loads(
        _render(
            cuenta="DD05-x", version=3, fingerprint="ab12cd", event_id="e-1", token_accessor="acc"
        )
    )
    assert line["cuenta"] == "DD05-x"
    assert line["version"] == 3
    assert line["fingerprint"] == "ab12cd"
    assert line["token_accessor"] == "acc"


def test_configure_renders_json_lines_off_a_terminal() -> None:
    """Off a terminal the configured output is one JSON object per line, redacted."""
    stream = io.StringIO()
    custodia_logging.configure(stream=stream, level="INFO")
    try:
        structlog.get_logger().info("comando", comando="revelar", token=TOKEN)
    finally:
        structlog.reset_defaults()
    record = json.loads(stream.getvalue().strip())
    assert record["comando"] == "revelar"
    assert record["token"] == custodia_logging.REDACTED
    assert record["level"] == "info"
