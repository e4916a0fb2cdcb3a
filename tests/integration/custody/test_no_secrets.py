"""R7: no secret reaches a log line, an error, or a value meant for the ledger.

One realistic run — people, designation, rotation, reveals, 2FA, refusals and failures — with
every log line captured; then the actual secret bytes (passwords, staged password, seed, code,
people's tokens, wrapping tokens, the root and service tokens) are searched for, raw and encoded,
in all of it. District used: DD31.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from structlog.testing import capture_logs

from custody.app.access import Access
from custody.app.passwords import generate_password
from custody.errors import WrappingTokenInvalidError
from custody.stack.servers import free_port
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials, WrappedSecret
from events.errors import CustodiaError
from tests.integration.custody.helpers import MakeUser, User, new_event_id
from tests.support.secretscan import assert_no_secrets, scan

pytestmark = pytest.mark.integration

SEED = "KRUGS4ZANFZSAYJAONSWG4TFOQQHGZLFMQQGM33SEBKE6VCQ"


def test_no_secret_in_logs_errors_or_ledger_facts(
    access: Access,
    credentials: Credentials,
    make_user: MakeUser,
    coadmin: User,
    service_client: VaultClient,
    root_client: VaultClient,
) -> None:
    """Scans captured logs, errors and ledger-bound values for every secret of the run."""
    secrets: list[str | bytes] = [SEED, SEED.lower()]
    ledger: list[Any] = []  # what the service would put in events
    errors: list[BaseException] = []
    shown: list[Any] = []  # values whose repr could end up in a log or a message

    def record(value: Any) -> None:
        if isinstance(value, WrappedSecret):  # the event carries the read's facts, not the token
            ledger.append(value.facts())
        else:
            ledger.append(dataclasses.asdict(value))

    def expect_error(action: Any) -> None:
        try:
            action()
        except (CustodiaError, ConnectionError) as error:
            errors.append(error)
        else:  # pragma: no cover - the scenario is built so that each of these fails
            raise AssertionError("expected a failure")

    with capture_logs() as logs:
        admin, other = make_user("sec-admin"), make_user("sec-other")
        secrets += [admin.password, admin.token, other.password, other.token, coadmin.token]
        access.designate(
            "DD31", admin.username, record=lambda: ledger.append({"designated": "DD31"})
        )

        first, second = generate_password("x"), generate_password("x")
        secrets += [first, second]
        for password in (first, second):
            event = new_event_id()
            base = credentials.current_version("DD31-x")
            shown.append(
                credentials.stage(
                    coadmin.token,
                    "DD31-x",
                    password,
                    event,
                    base,
                    staged_by=coadmin.username,
                    record=record,
                )
            )
            shown.append(credentials.confirm(coadmin.token, "DD31-x", event, record=record))
        staged = generate_password("x")
        secrets.append(staged)
        pending = new_event_id()
        shown.append(
            credentials.stage(
                coadmin.token,
                "DD31-x",
                staged,
                pending,
                credentials.current_version("DD31-x"),
                staged_by="c",
                record=record,
            )
        )

        wrapped = credentials.reveal(admin.token, "DD31-x", record)
        secrets.append(wrapped.token)
        credential = credentials.unwrap(wrapped.token, "DD31-x")
        assert credential.password == second
        shown += [wrapped, credential]

        shown.append(
            credentials.register_totp(
                coadmin.token, "DD31-x", f"otpauth://totp/X:DD31IECM?secret={SEED}&issuer=X"
            )
        )
        code = credentials.totp_code(admin.token, "DD31-x")
        wrapped_code = credentials.reveal_totp(admin.token, "DD31-x", record)
        secrets += [code.code, wrapped_code.token]
        shown += [code, wrapped_code, credentials.unwrap_totp(wrapped_code.token, "DD31-x")]

        def ledger_down(value: WrappedSecret) -> None:
            secrets.append(value.token)
            raise ConnectionError("ledger unavailable")

        expect_error(lambda: credentials.reveal(admin.token, "DD31-x", ledger_down))
        expect_error(lambda: credentials.unwrap(wrapped.token, "DD31-x"))
        expect_error(lambda: credentials.read_current_wrapped(other.token, "DD31-x"))
        expect_error(lambda: credentials.totp_code(other.token, "DD31-x"))
        expect_error(
            lambda: credentials.stage(coadmin.token, "DD31-x", staged + "2", "x", 0, staged_by="c")
        )
        expect_error(
            lambda: service_client.with_token(None).login_userpass(
                admin.username, admin.password + "x"
            )
        )
        expect_error(
            lambda: credentials.register_totp(
                coadmin.token, "DD31-x", f"otpauth://hotp/X:a?secret={SEED}"
            )
        )
        expect_error(
            lambda: VaultClient(f"http://127.0.0.1:{free_port()}", admin.token).lookup_self()
        )
        expect_error(lambda: service_client.with_token(wrapped.token).lookup_self())
        shown += [service_client, root_client, service_client.with_token(admin.token)]

    assert root_client.token
    assert service_client.token
    secrets += [root_client.token, service_client.token]
    assert len(logs) > 20
    assert len(errors) == 9
    assert len(ledger) >= 8
    assert any(isinstance(e, WrappingTokenInvalidError) for e in errors)

    # The scanner does find these secrets where they are (a control: this test can fail).
    assert scan([{"event": "leak", "value": first}], secrets)
    assert scan(credential, secrets)  # the unwrapped credential holds the password, by design
    assert scan(dataclasses.asdict(wrapped), secrets)  # why events use WrappedSecret.facts()

    assert_no_secrets(logs, secrets, where="logs")
    assert_no_secrets(errors, secrets, where="errors")
    assert_no_secrets(ledger, secrets, where="ledger")
    assert_no_secrets([repr(v) for v in shown] + [str(v) for v in shown], secrets, where="repr")
