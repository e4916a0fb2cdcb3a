"""A crash between the ledger write and the Vault write is detected and repaired.

Each test performs only the first write of a command (the crash) and hands the reconciler the
ledger's view as plain data. Districts used: DD20 … DD29, DD32.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from custody.app.access import Access
from custody.app.reconcile import AccountState, DesiredState, Drift, DriftKind, Reconciler, Repair
from custody.errors import VaultPermissionDeniedError
from custody.vault.client import VaultClient
from custody.vault.credentials import ConfirmedRotation, Credentials
from tests.integration.custody.helpers import MakeUser, User, new_event_id, set_credential

pytestmark = pytest.mark.integration


@pytest.fixture
def reconciler(service_client: VaultClient) -> Reconciler:
    return Reconciler(service_client, grace=timedelta(0))


def reads(credentials: Credentials, token: str, account: str) -> str:
    return credentials.unwrap(
        credentials.read_current_wrapped(token, account).token, account
    ).password


def kinds(drifts: list[Drift]) -> list[str]:
    return [str(d.kind) for d in drifts]


def test_crash_after_revocation_before_ledger(
    access: Access,
    reconciler: Reconciler,
    make_user: MakeUser,
    credentials: Credentials,
    coadmin: User,
) -> None:
    """Designation crashed after emptying the group: the ledger still names A, so A is put back."""
    a = make_user("rc-a")
    access.designate("DD20", a.username)
    set_credential(credentials, coadmin.token, "DD20-x", "Dd20-password")
    access.set_district_holder("DD20", None)  # first write only
    desired = DesiredState(
        holders={"DD20": a.username},
        accounts={"DD20-x": AccountState(credentials.current_version("DD20-x"))},
    )
    report = reconciler.reconcile(desired)
    assert kinds(report.repaired) == ["membership"]
    assert access.district_holders("DD20") == (a.username,)
    assert reads(credentials, a.token, "DD20-x") == "Dd20-password"
    assert reconciler.detect(desired) == []


def test_crash_after_ledger_before_grant(
    access: Access, reconciler: Reconciler, make_user: MakeUser
) -> None:
    """Designation recorded (B) but the grant never happened: reconciliation grants B."""
    a, b = make_user("rc-a2"), make_user("rc-b2")
    access.designate("DD21", a.username)
    access.set_district_holder("DD21", None)  # revoke A; the ledger now says B; crash
    report = reconciler.reconcile(DesiredState(holders={"DD21": b.username}))
    assert [(d.kind, d.expected, d.actual) for d in report.repaired] == [
        (DriftKind.MEMBERSHIP, b.username, "")
    ]
    assert access.district_holders("DD21") == (b.username,)


def test_membership_the_ledger_does_not_know_is_removed(
    access: Access,
    reconciler: Reconciler,
    make_user: MakeUser,
    root_client: VaultClient,
    credentials: Credentials,
    coadmin: User,
) -> None:
    """Someone added to a district group outside Custodia loses access on reconciliation."""
    holder, intruder = make_user("rc-holder"), make_user("rc-intruder")
    access.designate("DD22", holder.username)
    set_credential(credentials, coadmin.token, "DD22-x", "Dd22-password")
    ids = [access.require_entity_id(u) for u in (holder.username, intruder.username)]
    root_client.write(
        "identity/group/name/dd22-administracion", {"member_entity_ids": ids}, operation="tamper"
    )
    assert reads(credentials, intruder.token, "DD22-x") == "Dd22-password"
    report = reconciler.reconcile(
        DesiredState(
            holders={"DD22": holder.username},
            accounts={"DD22-x": AccountState(credentials.current_version("DD22-x"))},
        )
    )
    assert kinds(report.repaired) == ["membership"]
    with pytest.raises(VaultPermissionDeniedError):
        reads(credentials, intruder.token, "DD22-x")
    assert reads(credentials, holder.token, "DD22-x") == "Dd22-password"


def test_unknown_person_fails_closed(
    access: Access, reconciler: Reconciler, make_user: MakeUser
) -> None:
    """A holder without an identity is reported for a person, and nobody keeps the access."""
    a = make_user("rc-unk")
    access.designate("DD23", a.username)
    report = reconciler.reconcile(DesiredState(holders={"DD23": "sin-identidad"}))
    assert sorted(kinds(report.drifts)) == ["membership", "unknown_person"]
    assert [d.repair for d in report.pending] == [Repair.MANUAL]
    assert access.district_holders("DD23") == ()


def test_crash_after_stage_before_ledger(
    credentials: Credentials, reconciler: Reconciler, service_client: VaultClient, coadmin: User
) -> None:
    """A staged credential whose "rotation started" never reached the ledger is deleted (after
    the grace period; a younger one may be in flight and is left alone)."""
    account = "DD24-x"
    version = set_credential(credentials, coadmin.token, account, "Dd24-current")
    credentials.stage(
        coadmin.token, account, "Never-recorded", new_event_id(), version, staged_by="t"
    )
    desired = DesiredState(accounts={account: AccountState(version)})
    assert Reconciler(service_client, grace=timedelta(hours=1)).detect(desired) == []
    report = reconciler.reconcile(desired)
    assert kinds(report.repaired) == ["orphan_staged"]
    assert credentials.staged_metadata(account) is None
    event = new_event_id()
    credentials.stage(coadmin.token, account, "Next-rotation", event, version, staged_by="t")
    credentials.abandon(coadmin.token, account, event)


def test_crash_after_confirm_before_ledger(
    credentials: Credentials, reconciler: Reconciler, coadmin: User
) -> None:
    """Vault's current version moved by the open rotation but the ledger did not record it: a
    ledger repair is asked for with the event's facts; once recorded, the staged leftover goes."""
    account = "DD26-facebook"
    version = set_credential(credentials, coadmin.token, account, "Dd26-fb-1")
    event = new_event_id()
    credentials.stage(coadmin.token, account, "Dd26-fb-2", event, version, staged_by="t")

    def crash(_: ConfirmedRotation) -> None:
        raise RuntimeError("crash before the ledger write")

    with pytest.raises(RuntimeError):
        credentials.confirm(coadmin.token, account, event, record=crash)
    ledger_view = DesiredState(accounts={account: AccountState(version, open_rotation=event)})
    report = reconciler.reconcile(ledger_view)
    assert [(d.kind, d.repair) for d in report.pending] == [
        (DriftKind.CONFIRMED_UNRECORDED, Repair.LEDGER)
    ]
    facts = report.pending[0].facts
    assert (facts["rotation_event_id"], facts["version"]) == (event, str(version + 1))
    assert re.fullmatch(r"[0-9a-f]{64}", facts["fingerprint"])
    assert report.repaired == []

    # The service records the confirmation from those facts; the next pass cleans up.
    recorded = DesiredState(accounts={account: AccountState(version + 1)})
    assert kinds(reconciler.reconcile(recorded).repaired) == ["orphan_staged"]
    assert reconciler.detect(recorded) == []


def test_crash_after_abandon_recorded(
    credentials: Credentials, reconciler: Reconciler, coadmin: User
) -> None:
    """Abandonment recorded in the ledger, staged credential still in Vault: it is deleted."""
    account = "DD27-tiktok"
    version = credentials.current_version(account)
    credentials.stage(
        coadmin.token, account, "Abandoned-pw-1", new_event_id(), version, staged_by="t"
    )
    report = reconciler.reconcile(DesiredState(accounts={account: AccountState(version)}))
    assert kinds(report.repaired) == ["orphan_staged"]


def test_staged_missing_and_manual_cases(
    credentials: Credentials, reconciler: Reconciler, coadmin: User, root_client: VaultClient
) -> None:
    """An open rotation with nothing staged asks the ledger; a version written outside Custodia,
    a ledger version Vault lacks and an account the ledger lacks are left for a person."""
    v1 = set_credential(credentials, coadmin.token, "DD25-x", "Dd25-x-1")
    set_credential(credentials, coadmin.token, "DD25-youtube", "Dd25-yt-1")
    root_client.write(
        "custodia/data/cuentas/DD25/youtube",
        {"data": {"password": "Out-of-band"}, "options": {"cas": 1}},
        operation="tamper",
    )
    set_credential(credentials, coadmin.token, "DD25-unknown", "Dd25-unknown-1")
    desired = DesiredState(
        accounts={
            "DD25-x": AccountState(v1, open_rotation="lost-rotation"),
            "DD25-youtube": AccountState(1),
            "DD25-instagram": AccountState(3),
        }
    )
    report = reconciler.reconcile(desired)
    found = {(d.subject, d.kind, d.repair) for d in report.pending}
    assert found == {
        ("DD25-x", DriftKind.STAGED_MISSING, Repair.LEDGER),
        ("DD25-youtube", DriftKind.UNRECORDED_VERSION, Repair.MANUAL),
        ("DD25-instagram", DriftKind.LEDGER_AHEAD, Repair.MANUAL),
        ("DD25-unknown", DriftKind.UNKNOWN_ACCOUNT, Repair.MANUAL),
    }
    assert report.repaired == []


def test_role_group_drift(
    access: Access, service_client: VaultClient, make_user: MakeUser, coadmin: User
) -> None:
    """Role groups reconcile too, with the requesting coadministrator's token (the service's
    may not touch them): a member the ledger does not know is removed."""
    intruder = make_user("rc-role", "titular")
    token = coadmin.login()
    wanted = set(access.members("titulares", caller_token=token)) - {intruder.username}
    reconciler = Reconciler(service_client, role_token=token, grace=timedelta(0))
    report = reconciler.reconcile(DesiredState(roles={"titular": wanted}))
    assert kinds(report.repaired) == ["membership"]
    assert intruder.username not in access.members("titulares", caller_token=token)


def test_repair_rechecks_the_ledger(
    access: Access, reconciler: Reconciler, make_user: MakeUser
) -> None:
    """A repair computed from a ledger view that has since moved on is skipped, not applied."""
    a, b = make_user("rc-old"), make_user("rc-new")
    access.designate("DD28", a.username)
    stale = DesiredState(holders={"DD28": a.username})
    drifts_before = reconciler.detect(stale)
    assert drifts_before == []
    access.designate("DD28", b.username)  # recorded after the stale view was taken
    ledger_now = {"dd28-administracion": b.username}
    report = reconciler.reconcile(
        stale, still_wanted=lambda d: ledger_now.get(d.subject) == d.expected
    )
    assert kinds(report.drifts) == ["membership"]
    assert report.repaired == []
    assert access.district_holders("DD28") == (b.username,)


def test_open_rotation_staged_without_its_tag_is_tagged_again(
    credentials: Credentials, reconciler: Reconciler, service_client: VaultClient, coadmin: User
) -> None:
    """The ledger's open rotation is staged but its tag is gone (a deletion racing two other
    rotations): it is never deleted as an orphan — the coadministrator may already use the new
    password — but tagged again from the ledger's facts, with the service's token; then the
    rotation confirms as usual."""
    account = "DD29-x"
    version = set_credential(credentials, coadmin.token, account, "Dd29-current")
    event = new_event_id()
    staged = credentials.stage(coadmin.token, account, "Dd29-next", event, version, staged_by="t")
    service_client.write(  # the tag is lost
        "custodia/metadata/preparadas/DD29/x", {"custom_metadata": {}}, operation="test"
    )
    assert credentials.staged_metadata(account) == {}
    desired = DesiredState(
        accounts={
            account: AccountState(
                version,
                open_rotation=event,
                staged_version=version + 1,
                staged_fingerprint=staged.fingerprint,
            )
        }
    )
    report = reconciler.reconcile(desired)
    assert kinds(report.repaired) == ["staged_untagged"]
    assert credentials.staged_metadata(account) == {
        "ledger_event_id": event,
        "base_version": str(version),
        "version": str(version + 1),
        "fingerprint": staged.fingerprint,
    }
    assert reconciler.detect(desired) == []
    assert credentials.confirm(coadmin.token, account, event).version == version + 1
    assert reads(credentials, coadmin.token, account) == "Dd29-next"


def test_retag_loses_to_a_rotation_that_tags_meanwhile(
    credentials: Credentials, reconciler: Reconciler, service_client: VaultClient, coadmin: User
) -> None:
    """The repair writes with check-and-set on the metadata version it saw: a tag written
    since (the staging's own) is not overwritten."""
    account = "DD32-facebook"
    version = set_credential(credentials, coadmin.token, account, "Dd29-fb-current")
    caller = service_client
    caller.write(
        "custodia/data/preparadas/DD32/facebook",
        {"data": {"password": "Dd29-fb-next"}, "options": {"cas": 0}},
        operation="test",
    )
    desired = DesiredState(
        accounts={
            account: AccountState(
                version,
                open_rotation="ledger-rotation",
                staged_version=version + 1,
                staged_fingerprint="f" * 64,
            )
        }
    )
    drifts = reconciler.detect(desired)
    assert kinds(drifts) == ["staged_untagged"]
    caller.write(  # the staging's own tag lands after the drift was seen
        "custodia/metadata/preparadas/DD32/facebook",
        {"custom_metadata": {"ledger_event_id": "its-own"}, "metadata_cas": 0},
        operation="test",
    )
    report = reconciler.repair(drifts)
    assert kinds(report.failed) == ["staged_untagged"]
    assert credentials.staged_metadata(account) == {"ledger_event_id": "its-own"}
    credentials.abandon(coadmin.token, account, "its-own")
