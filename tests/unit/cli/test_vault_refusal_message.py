"""OpenBao's 400 reaches the person as a Spanish message that says where and why, so a failed
``custodia init`` can be diagnosed; a refusal whose body held a secret carries no reason."""

from __future__ import annotations

from cli.messages import describe
from custody.errors import VaultInvalidRequestError


def test_a_refusal_names_the_operation_the_path_and_openbao_s_reason() -> None:
    """The operation, the path and OpenBao's own reason are in the message, with a non-zero
    exit code."""
    code, text = describe(
        VaultInvalidRequestError("layout", "auth/userpass/users/ana", "invalid token_ttl")
    )
    assert code != 0
    assert text.startswith("OpenBao rechazó los datos de la operación")
    assert "layout en auth/userpass/users/ana" in text
    assert text.endswith(": invalid token_ttl.")


def test_a_refusal_without_a_reason_says_only_where() -> None:
    """The client omits the reason of a request whose body is secret: the message then ends
    after the path."""
    code, text = describe(VaultInvalidRequestError("create-login", "auth/userpass/users/x"))
    assert code != 0
    assert text == (
        "OpenBao rechazó los datos de la operación (create-login en auth/userpass/users/x)."
    )
