"""Staged rotation, fail-closed wrapped reveals and 2FA against the real server.
Districts used: DD10, DD11, DD12.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import threading
import time
from concurrent.futures import Future
from datetime import UTC, datetime

import pytest

from custody.app.access import Access
from custody.app.passwords import check_password, generate_password, rules_for
from custody.errors import (
    InvalidOtpauthUriError,
    NoStagedRotationError,
    RotationMismatchError,
    VaultCasConflictError,
    VaultPermissionDeniedError,
    VaultServerError,
    WrappingPathMismatchError,
    WrappingTokenInvalidError,
)
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials, StagedRotation, StagePrefetch, WrappedSecret
from custody.vault.layout import AccountRef
from tests.integration.custody.helpers import MakeUser, User, new_event_id, set_credential

pytestmark = pytest.mark.integration

SEED = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # b"12345678901234567890", RFC 6238's test seed


def rfc6238(seed_b32: str, at: float, period: int = 30, digits: int = 6) -> str:
    """An independent TOTP (SHA1) computation to check what OpenBao answers."""
    key = base64.b32decode(seed_b32)
    mac = hmac.new(key, struct.pack(">Q", int(at) // period), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = (struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF) % 10**digits
    return f"{value:0{digits}d}"


@pytest.fixture(scope="module")
def admin10(access: Access, make_user: MakeUser) -> User:
    user = make_user("cred-adm10")
    access.set_district_holder("DD10", user.username)
    return user


def test_rotation_stage_confirm(credentials: Credentials, coadmin: User, admin10: User) -> None:
    """A generated password is staged (invisible to the administrator), confirmed as the next
    version with the same fingerprint, and the staged copy is destroyed."""
    account = "DD10-tiktok"
    password = generate_password("tiktok")
    assert check_password(password, rules_for("tiktok")) == []
    base = credentials.current_version(account)
    event = new_event_id()
    staged = credentials.stage(
        coadmin.token, account, password, event, base, staged_by=coadmin.username
    )
    assert staged.version == base + 1
    assert re.fullmatch(r"[0-9a-f]{64}", staged.fingerprint)
    assert password not in staged.fingerprint
    meta = credentials.staged_metadata(account)
    assert meta is not None
    assert meta["ledger_event_id"] == event
    assert meta["staged_by"] == coadmin.username
    assert password not in str(meta)

    confirmed = credentials.confirm(coadmin.token, account, event, confirmed_by=coadmin.username)
    assert (confirmed.version, confirmed.previous_version) == (base + 1, base)
    assert confirmed.fingerprint == staged.fingerprint
    assert credentials.staged_metadata(account) is None
    assert credentials.current_version(account) == base + 1
    revealed = credentials.unwrap(
        credentials.read_current_wrapped(admin10.token, account).token, account
    )
    assert (revealed.password, revealed.version) == (password, base + 1)


def test_fingerprint_is_keyed_and_stable(credentials: Credentials) -> None:
    """The same secret gives the same fingerprint; another secret a different one."""
    one = credentials.fingerprint("same-secret-value")
    assert one == credentials.fingerprint("same-secret-value")
    assert one != credentials.fingerprint("other-secret-value")
    assert one != "sha256:" + hashlib.sha256(b"same-secret-value").hexdigest()


def test_one_rotation_at_a_time(credentials: Credentials, coadmin: User) -> None:
    """Two coadministrators staging the same account at once: exactly one wins (CAS 0)."""
    account = "DD10-x"
    outcomes = _race(
        credentials, coadmin.token, account, credentials.current_version(account), "2", 2
    )
    wins = [o for o in outcomes if isinstance(o, StagedRotation)]
    conflicts = [o for o in outcomes if isinstance(o, VaultCasConflictError)]
    assert len(wins) == 1
    assert len(conflicts) == 1
    meta = credentials.staged_metadata(account)
    assert meta is not None
    assert meta["ledger_event_id"] == wins[0].rotation_event_id
    credentials.abandon(coadmin.token, account, wins[0].rotation_event_id)


def test_stale_base_version_is_a_conflict(
    credentials: Credentials, coadmin: User, service_client: VaultClient
) -> None:
    """Staging from a stale ledger view, or confirming after the current version moved, is
    refused."""
    account = "DD10-facebook"
    set_credential(credentials, coadmin.token, account, "First-version-pw")
    base = credentials.current_version(account)
    with pytest.raises(VaultCasConflictError) as stale:
        credentials.stage(
            coadmin.token, account, "Stale-pw-xx", new_event_id(), base - 1, staged_by="t"
        )
    assert (stale.value.expected_version, stale.value.actual_version) == (base - 1, base)
    assert credentials.staged_metadata(account) is None  # what it staged meanwhile is gone

    event = new_event_id()
    credentials.stage(coadmin.token, account, "Pending-pw-xx", event, base, staged_by="t")
    # Something writes a new current version behind the rotation's back (only the service's
    # token can write one, and only wrapped).
    service_client.write(
        "custodia/data/cuentas/DD10/facebook",
        {"data": {"password": "Out-of-band"}, "options": {"cas": base}},
        operation="test",
        wrap_ttl=1,
    )
    with pytest.raises(VaultCasConflictError) as moved:
        credentials.confirm(coadmin.token, account, event)
    assert moved.value.expected_version == base
    credentials.abandon(coadmin.token, account, event)


def test_confirm_and_abandon_check_the_rotation(credentials: Credentials, coadmin: User) -> None:
    """Confirming or abandoning names the rotation: another id, or nothing staged, is refused."""
    account = "DD10-youtube"
    with pytest.raises(NoStagedRotationError):
        credentials.confirm(coadmin.token, account, new_event_id())
    with pytest.raises(NoStagedRotationError):
        credentials.abandon(coadmin.token, account, new_event_id())
    event = new_event_id()
    credentials.stage(
        coadmin.token,
        account,
        "Youtube-pw-1",
        event,
        credentials.current_version(account),
        staged_by="t",
    )
    with pytest.raises(RotationMismatchError):
        credentials.confirm(coadmin.token, account, "another-rotation")
    with pytest.raises(RotationMismatchError):
        credentials.abandon(coadmin.token, account, "another-rotation")
    abandoned = credentials.abandon(coadmin.token, account, event)
    assert abandoned.rotation_event_id == event
    assert credentials.staged_metadata(account) is None


def test_stage_with_failing_record_deletes_staged(credentials: Credentials, coadmin: User) -> None:
    """If the "rotation started" event cannot be written, the staged credential is removed."""
    account = "DD10-instagram"

    def fail(_: StagedRotation) -> None:
        raise RuntimeError("ledger down")

    with pytest.raises(RuntimeError):
        credentials.stage(
            coadmin.token,
            account,
            "Never-shown-pw",
            new_event_id(),
            credentials.current_version(account),
            staged_by="t",
            record=fail,
        )
    assert credentials.staged_metadata(account) is None


def test_stage_with_failing_fingerprint_deletes_staged(
    credentials: Credentials, coadmin: User
) -> None:
    """The fingerprint sent ahead is awaited after the data write: if it failed, the staged
    credential is removed and the error propagates (no untagged credential is left)."""
    account = "DD10-instagram"
    base = credentials.current_version(account)
    ahead = credentials.prefetch_stage(coadmin.token, account, "Never-tagged-pw")
    failed: Future[str] = Future()
    failed.set_exception(VaultServerError("fingerprint", "custodia-transit/hmac", 500))
    with pytest.raises(VaultServerError):
        credentials.stage(
            coadmin.token,
            account,
            "Never-tagged-pw",
            new_event_id(),
            base,
            staged_by="t",
            prefetched=StagePrefetch(ahead.account, ahead.metadata, failed, ahead.authorized),
        )
    assert credentials.staged_metadata(account) is None
    # and the account can be staged again at once
    staged = credentials.stage(
        coadmin.token, account, "Tagged-this-time-pw", new_event_id(), base, staged_by="t"
    )
    assert credentials.staged_metadata(account) == {
        "ledger_event_id": staged.rotation_event_id,
        "staged_by": "t",
        "base_version": str(base),
        "version": str(base + 1),
        "fingerprint": staged.fingerprint,
    }
    credentials.abandon(coadmin.token, account, staged.rotation_event_id)


def test_reveal_records_before_handing_over(
    credentials: Credentials, coadmin: User, admin10: User
) -> None:
    """The record callback sees the read (account, version, accessor) before the caller can
    unwrap; the wrapping token is single use."""
    set_credential(credentials, coadmin.token, "DD10-x", "Reveal-me-once")
    recorded: list[tuple[str, int | None, str]] = []
    wrapped = credentials.reveal(
        admin10.token, "DD10-x", lambda w: recorded.append((w.account, w.version, w.accessor))
    )
    assert recorded == [("DD10-x", wrapped.version, wrapped.accessor)]
    assert wrapped.ttl == 60
    assert wrapped.creation_path == "custodia/data/cuentas/DD10/x"
    assert credentials.lookup_wrapping(wrapped.token).creation_path == wrapped.creation_path
    assert credentials.unwrap(wrapped.token, "DD10-x").password == "Reveal-me-once"
    with pytest.raises(WrappingTokenInvalidError):
        credentials.unwrap(wrapped.token, "DD10-x")


def test_reveal_fails_closed(credentials: Credentials, coadmin: User, admin10: User) -> None:
    """If the read cannot be recorded, the wrapping token is revoked: nobody can unwrap it."""
    set_credential(credentials, coadmin.token, "DD10-x", "Not-recorded-pw")
    seen: list[WrappedSecret] = []

    def ledger_down(w: WrappedSecret) -> None:
        seen.append(w)
        raise ConnectionError("ledger unavailable")

    with pytest.raises(ConnectionError):
        credentials.reveal(admin10.token, "DD10-x", ledger_down)
    assert len(seen) == 1
    with pytest.raises(WrappingTokenInvalidError):
        credentials.unwrap(seen[0].token, "DD10-x")


def test_wrapping_token_for_something_else_is_refused(
    credentials: Credentials, coadmin: User, admin10: User, service_client: VaultClient
) -> None:
    """A token wrapping another path (or forged with sys/wrapping/wrap) is refused unused."""
    set_credential(credentials, coadmin.token, "DD10-x", "Right-account-pw")
    other = credentials.read_current_wrapped(coadmin.token, "DD10-x")
    with pytest.raises(WrappingPathMismatchError):
        credentials.unwrap(other.token, "DD10-facebook")
    assert credentials.unwrap(other.token, "DD10-x").password == "Right-account-pw"  # not used up

    forged = service_client.write(
        "sys/wrapping/wrap", {"password": "Phishing"}, operation="test", wrap_ttl=60
    )
    assert forged is not None
    with pytest.raises(WrappingPathMismatchError):
        credentials.unwrap(forged["wrap_info"]["token"], "DD10-x")


def test_revoke_wrapped_by_accessor(credentials: Credentials, coadmin: User, admin10: User) -> None:
    """The service can revoke a wrapping token by its accessor; a second revoke reports False."""
    set_credential(credentials, coadmin.token, "DD10-x", "Revoked-pw-xx")
    wrapped = credentials.read_current_wrapped(admin10.token, "DD10-x")
    assert credentials.revoke_wrapped(wrapped.accessor) is True
    with pytest.raises(WrappingTokenInvalidError):
        credentials.unwrap(wrapped.token, "DD10-x")
    assert credentials.revoke_wrapped(wrapped) is False


def test_totp_register_and_codes(credentials: Credentials, coadmin: User, admin10: User) -> None:
    """An imported seed yields RFC 6238 codes; valid_until is the end of the current window;
    a wrapped code unwraps once to the same kind of answer."""
    account = "DD10-x"
    registration = credentials.register_totp(
        coadmin.token, account, f"otpauth://totp/X:DD10IECM?secret={SEED}&issuer=X"
    )
    assert (registration.issuer, registration.period, registration.digits) == ("X", 30, 6)
    assert SEED not in registration.seed_fingerprint
    before = time.time()
    code = credentials.totp_code(admin10.token, account)
    after = time.time()
    assert code.code in {rfc6238(SEED, before), rfc6238(SEED, after)}
    assert datetime.fromtimestamp(before, UTC) < code.valid_until
    assert code.valid_until.timestamp() % 30 == 0
    assert code.valid_until.timestamp() - before <= 30

    recorded: list[str] = []
    wrapped = credentials.reveal_totp(admin10.token, account, lambda w: recorded.append(w.accessor))
    assert recorded == [wrapped.accessor]
    assert wrapped.kind == "totp"
    unwrapped = credentials.unwrap_totp(wrapped.token, account)
    assert unwrapped.code in {rfc6238(SEED, before), rfc6238(SEED, time.time())}
    with pytest.raises(WrappingTokenInvalidError):
        credentials.unwrap_totp(wrapped.token, account)


def test_totp_rejects_bad_uri_before_any_request(credentials: Credentials, coadmin: User) -> None:
    """A HOTP URI or a short seed is refused by validation; the error never holds the seed."""
    with pytest.raises(InvalidOtpauthUriError) as hotp:
        credentials.register_totp(coadmin.token, "DD10-x", f"otpauth://hotp/X:a?secret={SEED}")
    assert hotp.value.problem == "type"
    with pytest.raises(InvalidOtpauthUriError) as short:
        credentials.register_totp(coadmin.token, "DD10-x", "otpauth://totp/X:a?secret=GEZDGNBV")
    assert short.value.problem == "secret-too-short"
    assert "GEZDGNBV" not in str(short.value)


def test_coadministrator_cannot_generate_a_readable_seed(
    coadmin: User, service_client: VaultClient
) -> None:
    """Asking the TOTP engine to generate (and so return) a seed is refused by policy."""
    with pytest.raises(VaultPermissionDeniedError):
        service_client.with_token(coadmin.token).write(
            "custodia-totp/keys/DD10-generated",
            {"generate": True, "exported": True, "issuer": "X", "account_name": "a"},
            operation="test",
        )


def _revoked(credentials: Credentials, wrapped: WrappedSecret) -> bool:
    """Whether ``wrapped`` can no longer be unwrapped (its revocation may still be on its way)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            credentials.lookup_wrapping(wrapped.token)
        except WrappingTokenInvalidError:
            return True
        time.sleep(0.02)
    return False


def test_reveal_ahead_of_the_metadata(
    credentials: Credentials, coadmin: User, admin10: User
) -> None:
    """Once this process knows the current version, a reveal sends the wrapped read of it along
    with the metadata read; it is used when the metadata agrees, and the password is right."""
    version = set_credential(credentials, coadmin.token, "DD10-x", "Ahead-of-time-pw")
    prefetch = credentials.prefetch_reveal(admin10.token, "DD10-x")
    assert prefetch.guess == version
    assert prefetch.ahead is not None
    wrapped = credentials.reveal(admin10.token, "DD10-x", lambda w: None, pinned=prefetch)
    assert wrapped.version == version
    assert wrapped is prefetch.ahead.result()
    assert credentials.unwrap(wrapped.token, "DD10-x").password == "Ahead-of-time-pw"


def test_reveal_ahead_of_a_stale_version_is_revoked(
    credentials: Credentials, service_client: VaultClient, coadmin: User, admin10: User
) -> None:
    """Another process rotated meanwhile: the metadata decides, the caller gets the new version,
    and the token made ahead for the old one is revoked."""
    set_credential(credentials, coadmin.token, "DD10-x", "Old-version-pw-1")
    other = Credentials(service_client)  # another service instance
    newer = set_credential(other, coadmin.token, "DD10-x", "New-version-pw-2")
    prefetch = credentials.prefetch_reveal(admin10.token, "DD10-x")
    assert prefetch.guess == newer - 1
    assert prefetch.ahead is not None
    wrapped = credentials.reveal(admin10.token, "DD10-x", lambda w: None, pinned=prefetch)
    assert wrapped.version == newer
    assert credentials.unwrap(wrapped.token, "DD10-x").password == "New-version-pw-2"
    assert _revoked(credentials, prefetch.ahead.result())


def test_reveal_ahead_then_refused_is_revoked(
    credentials: Credentials, coadmin: User, admin10: User, make_user: MakeUser
) -> None:
    """A reveal refused after its reads were sent (the ledger refused it) leaves no usable
    token; a caller OpenBao refuses gets the same refusal as without the read ahead."""
    set_credential(credentials, coadmin.token, "DD10-x", "Refused-later-pw")
    prefetch = credentials.prefetch_reveal(admin10.token, "DD10-x")
    assert prefetch.ahead is not None
    prefetch.drop()
    assert _revoked(credentials, prefetch.ahead.result())

    outsider = make_user("cred-outsider10")  # holds no district
    ahead = credentials.prefetch_reveal(outsider.token, "DD10-x")
    assert ahead.ahead is not None
    with pytest.raises(VaultPermissionDeniedError):
        credentials.reveal(outsider.token, "DD10-x", lambda w: None, pinned=ahead)
    with pytest.raises(VaultPermissionDeniedError):
        credentials.reveal(outsider.token, "DD10-x", lambda w: None)


def test_reveal_records_early_while_the_wrapped_read_is_on_its_way(
    credentials: Credentials, coadmin: User, admin10: User
) -> None:
    """With the version guessed right, the read is recorded from the metadata's version (no
    token yet) and the token made ahead is handed over only after that; nothing is voided."""
    version = set_credential(credentials, coadmin.token, "DD10-x", "Recorded-early-pw")
    prefetch = credentials.prefetch_reveal(admin10.token, "DD10-x")
    assert prefetch.ahead is not None
    early: list[int] = []
    voided: list[object] = []
    wrapped = credentials.reveal(
        admin10.token,
        "DD10-x",
        lambda w: pytest.fail("the usual record is not used"),
        pinned=prefetch,
        record_early=early.append,
        void=lambda v, e: voided.append((v, e)),
    )
    assert early == [version]
    assert voided == []
    assert wrapped is prefetch.ahead.result()
    assert credentials.unwrap(wrapped.token, "DD10-x").password == "Recorded-early-pw"


def test_reveal_refused_by_openbao_records_nothing_and_revokes_the_read_made_ahead(
    credentials: Credentials, coadmin: User, admin10: User, make_user: MakeUser
) -> None:
    """The service's wrapped read is sent ahead, alongside the caller's authorization; OpenBao
    refuses the caller (no capability on the reveal's marker): nothing is recorded early, the
    caller gets OpenBao's refusal, and the wrapping token made ahead is revoked (it never
    leaves the service)."""
    version = set_credential(credentials, coadmin.token, "DD10-x", "Never-delivered-pw")
    outsider = make_user("cred-early-outsider10")  # holds no district: OpenBao refuses
    prefetch = credentials.prefetch_reveal(outsider.token, "DD10-x")
    assert prefetch.guess == version
    assert prefetch.ahead is not None
    early: list[int] = []
    voided: list[tuple[int, BaseException]] = []
    with pytest.raises(VaultPermissionDeniedError) as refused:
        credentials.reveal(
            outsider.token,
            "DD10-x",
            lambda w: pytest.fail("a refused caller's read is never recorded"),
            pinned=prefetch,
            record_early=early.append,
            void=lambda v, e: voided.append((v, e)),
        )
    assert refused.value.status == 403
    assert early == []
    assert voided == []
    assert _revoked(credentials, prefetch.ahead.result())


def test_reveal_whose_early_record_fails_revokes_the_token_made_ahead(
    credentials: Credentials, coadmin: User, admin10: User
) -> None:
    """The ledger refuses (or cannot take) the early record: the token made ahead is revoked
    when it arrives, nothing is voided (nothing was recorded), the error propagates."""
    set_credential(credentials, coadmin.token, "DD10-x", "Refused-early-pw")
    prefetch = credentials.prefetch_reveal(admin10.token, "DD10-x")
    assert prefetch.ahead is not None

    def ledger_down(version: int) -> None:
        raise ConnectionError("ledger unavailable")

    voided: list[object] = []
    with pytest.raises(ConnectionError):
        credentials.reveal(
            admin10.token,
            "DD10-x",
            lambda w: None,
            pinned=prefetch,
            record_early=ledger_down,
            void=lambda v, e: voided.append(v),
        )
    assert voided == []
    assert _revoked(credentials, prefetch.ahead.result())


def test_stage_replaces_a_tag_another_rotation_got_in_first(
    credentials: Credentials, coadmin: User, service_client: VaultClient
) -> None:
    """Data and tag are written at once: when another rotation's tag lands first but this one
    wins the data, the data's owner replaces the tag; confirming then works as usual."""
    account = "DD10-linkedin"
    caller = service_client
    base = credentials.current_version(account)
    caller.write(  # a racing rotation's tag (its data will lose)
        "custodia/metadata/preparadas/DD10/linkedin",
        {"custom_metadata": {"ledger_event_id": "the-other-rotation"}, "metadata_cas": 0},
        operation="test",
    )
    event = new_event_id()
    staged = credentials.stage(
        coadmin.token, account, "Linkedin-owner-pw", event, base, staged_by="t"
    )
    assert credentials.staged_metadata(account) == {
        "ledger_event_id": event,
        "staged_by": "t",
        "base_version": str(base),
        "version": str(base + 1),
        "fingerprint": staged.fingerprint,
    }
    assert credentials.confirm(coadmin.token, account, event).version == base + 1
    assert credentials.staged_metadata(account) is None


def test_stage_that_loses_the_data_leaves_the_staged_credential_alone(
    credentials: Credentials, coadmin: User, service_client: VaultClient
) -> None:
    """Something already staged (another rotation's, or a leftover): the stage is a conflict
    and what is staged stays as it was (its tag is its owner's, or reconciliation's)."""
    account = "DD10-twitch"
    caller = service_client
    data_path = "custodia/data/preparadas/DD10/twitch"
    caller.write(
        data_path, {"data": {"password": "Leftover-pw"}, "options": {"cas": 0}}, operation="test"
    )
    with pytest.raises(VaultCasConflictError):
        credentials.stage(
            coadmin.token,
            account,
            "Losing-pw-xx",
            new_event_id(),
            credentials.current_version(account),
            staged_by="t",
        )
    body = caller.read(data_path, operation="test")
    assert body["data"]["data"] == {"password": "Leftover-pw"}
    assert body["data"]["metadata"]["version"] == 1
    credentials._delete_staged(caller, AccountRef.parse(account))  # clean up


def _race(
    credentials: Credentials, token: str, account: str, base: int, tag: str, n: int = 3
) -> list[object]:
    """``n`` stagings of ``account`` released at once; their results or conflicts."""
    barrier = threading.Barrier(n)
    outcomes: list[object] = []

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            outcomes.append(
                credentials.stage(
                    token, account, f"Race-{tag}-{i}-pw", f"ev-{tag}-{i}", base, staged_by="t"
                )
            )
        except VaultCasConflictError as conflict:
            outcomes.append(conflict)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_stagings_in_many_rounds_have_one_tagged_winner(
    credentials: Credentials, coadmin: User
) -> None:
    """Three rotations of one account at once, many times: each round exactly one wins and
    the staged tag is the winner's (never a loser's, never missing)."""
    account = "DD10-tumblr"
    base = credentials.current_version(account)
    for round_ in range(8):
        outcomes = _race(credentials, coadmin.token, account, base, str(round_))
        wins = [o for o in outcomes if isinstance(o, StagedRotation)]
        assert len(wins) == 1, outcomes
        assert len(outcomes) == 3
        meta = credentials.staged_metadata(account)
        assert meta is not None
        assert meta["ledger_event_id"] == wins[0].rotation_event_id
        assert meta["fingerprint"] == wins[0].fingerprint
        credentials.abandon(coadmin.token, account, wins[0].rotation_event_id)
