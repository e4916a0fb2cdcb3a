"""Ledger and Vault never disagree silently: detect drift, repair what Vault alone can repair.

The ledger is the truth about who is designated and which credential version is current; Vault
is where that truth becomes access and secrets. Each command writes both, in an order chosen so
that a crash between the two writes leaves a state this module recognises (6.XII, 11.8):

=================  =====================================================  ======================
command            order of writes                                        crash in between →
=================  =====================================================  ======================
designation        Vault: empty the district group → ledger → Vault:      ``membership``: set
(6.X)              add the incoming person (``Access.designate``)         the group from ledger
role grant         ledger → Vault: add                                    ``membership``
role revocation    Vault: remove → ledger                                 ``membership``
stage rotation     Vault: staged version (CAS 0) and its tag (metadata    ``orphan_staged``:
                   CAS 0), at once → ledger                               delete it
confirm rotation   Vault: current ← staged (CAS base) → ledger → Vault:   ``confirmed_unrecorded``
                   delete staged                                          → record it in ledger;
                                                                          then ``orphan_staged``
abandon rotation   ledger → Vault: delete staged                          ``orphan_staged``
=================  =====================================================  ======================

The rule behind the order: **revoke before recording, grant after recording** — at every instant
Vault grants at most what the ledger grants; and a confirmed credential reaches Vault first,
because the platform already uses it. Every crash window therefore leaves either a Vault-only
repair (set a group's members; delete a staged leftover — neither needs reading a secret, so the
service token suffices) or a ledger-only repair (record a confirmation: a :class:`Drift` with
``repair=LEDGER`` whose ``facts`` carry the event's fields), which the command service performs.
Staging writes the data and its tag at once; the data's owner replaces a tag that another
rotation got in first. Only three rotations of one account racing on two service instances, one
of them deleting its leftover in between, could leave the ledger's open rotation staged without
its tag: ``staged_untagged``, repaired by writing the tag again from the ledger's facts (never
deleted as an orphan: the coadministrator may already be using the new password).
What neither order explains — a version written outside Custodia, a ledger version Vault lacks,
a credential for an account the ledger does not know — is reported for a person to investigate
(``repair=MANUAL``), never "fixed" silently.

:class:`Reconciliation` is the use case (``custodia reconciliar``; coadministrators only): the
desired state read from the ledger, the check, and the ledger-side repair.

The desired state is plain data, built by the caller from the ledger. Only the
districts it names are examined (a district listed with ``None`` must have no administrator).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import uuid5

import structlog

from custody.app.access import Access, login_name
from custody.app.base import REQUEST_NAMESPACE, Actor, UseCases
from custody.errors import VaultNotFoundError
from custody.vault.client import VaultClient, parse_time
from custody.vault.credentials import seed_tag
from custody.vault.layout import (
    CURRENT,
    ROLE_GROUPS,
    STAGED,
    AccountRef,
    district_group,
    district_id,
)
from events.domain import DistrictId, Person, parse_account_id, require_coadministrator
from events.errors import CustodiaError

log = structlog.get_logger()


class Repair(StrEnum):
    """Who can repair a drift."""

    VAULT = "vault"  # reconciliation itself, with the service token
    LEDGER = "ledger"  # the command service records the missing event
    MANUAL = "manual"  # a person investigates (possible tampering or data loss)


class DriftKind(StrEnum):
    """The kinds of disagreement between the ledger and Vault."""

    MEMBERSHIP = "membership"  # a group's members differ from the ledger
    UNKNOWN_PERSON = "unknown_person"  # the ledger names someone with no identity in Vault
    MISSING_GROUP = "missing_group"  # a group of the layout is missing (run the layout again)
    ORPHAN_STAGED = "orphan_staged"  # a staged credential no open rotation explains
    STAGED_UNTAGGED = "staged_untagged"  # the open rotation is staged without its tag
    STAGED_MISSING = "staged_missing"  # the ledger has an open rotation, Vault nothing staged
    SEED_UNRECORDED = "seed_unrecorded"  # the TOTP seed is not the one the ledger registered
    SEED_MISSING = "seed_missing"  # the ledger registered a seed, OpenBao has none
    CONFIRMED_UNRECORDED = "confirmed_unrecorded"  # Vault current ahead by the open rotation
    UNRECORDED_VERSION = "unrecorded_version"  # Vault current ahead, unexplained
    LEDGER_AHEAD = "ledger_ahead"  # the ledger's version is not in Vault
    UNKNOWN_ACCOUNT = "unknown_account"  # a credential for an account the ledger lacks


_REPAIR: Mapping[DriftKind, Repair] = {
    DriftKind.MEMBERSHIP: Repair.VAULT,
    DriftKind.UNKNOWN_PERSON: Repair.MANUAL,
    DriftKind.MISSING_GROUP: Repair.MANUAL,
    DriftKind.ORPHAN_STAGED: Repair.VAULT,
    DriftKind.STAGED_UNTAGGED: Repair.VAULT,
    DriftKind.STAGED_MISSING: Repair.LEDGER,
    DriftKind.SEED_UNRECORDED: Repair.MANUAL,
    DriftKind.SEED_MISSING: Repair.MANUAL,
    DriftKind.CONFIRMED_UNRECORDED: Repair.LEDGER,
    DriftKind.UNRECORDED_VERSION: Repair.MANUAL,
    DriftKind.LEDGER_AHEAD: Repair.MANUAL,
    DriftKind.UNKNOWN_ACCOUNT: Repair.MANUAL,
}


@dataclass(frozen=True)
class Drift:
    """One disagreement: what the ledger expects, what Vault has, and who can repair it."""

    kind: DriftKind
    subject: str  # a group name or an account
    expected: str
    actual: str
    facts: Mapping[str, str] = field(default_factory=dict)

    @property
    def repair(self) -> Repair:
        return _REPAIR[self.kind]


@dataclass(frozen=True)
class AccountState:
    """What the ledger says about an account's credential."""

    current_version: int = 0
    open_rotation: str | None = None  # event id of a started, not yet finished rotation
    staged_version: int | None = None  # the open rotation's version and fingerprint
    staged_fingerprint: str | None = None
    # The registered 2FA seed's keyed fingerprint (None: no seed, or one registered before the
    # ledger kept it: not checked).
    totp_fingerprint: str | None = None


@dataclass(frozen=True)
class DesiredState:
    """The ledger's view, as plain data."""

    holders: Mapping[str, str | None] = field(default_factory=dict)  # district → user name
    accounts: Mapping[str, AccountState] = field(default_factory=dict)  # "DD05-x" → state
    roles: Mapping[str, Collection[str]] | None = None  # role → user names (None: not checked)


@dataclass
class ReconcileReport:
    """Drifts found; those repaired in Vault; those left for the ledger or a person."""

    drifts: list[Drift] = field(default_factory=list)
    repaired: list[Drift] = field(default_factory=list)
    pending: list[Drift] = field(default_factory=list)
    failed: list[Drift] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.drifts


class Reconciler:
    """Compares a :class:`DesiredState` with Vault (service token) and repairs Vault's side."""

    def __init__(
        self,
        client: VaultClient,
        *,
        role_token: str | None = None,
        grace: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._client = client
        self._access = Access(client)
        # The role groups are read and repaired with a coadministrator's own token (the
        # service's may not touch them); None: with ``client``'s token (administrative).
        self._role_token = role_token
        self._mounts = client.mounts
        # A staged credential younger than this may be a rotation in flight: left alone.
        self._grace = grace
        self._clock = clock or (lambda: datetime.now(UTC))

    def reconcile(
        self,
        desired: DesiredState,
        *,
        repair: bool = True,
        still_wanted: Callable[[Drift], bool] | None = None,
    ) -> ReconcileReport:
        """Detect, then (unless ``repair=False``) repair Vault's side; see :meth:`repair`."""
        drifts = self.detect(desired)
        if not repair:
            return ReconcileReport(drifts, [], list(drifts))
        return self.repair(drifts, still_wanted=still_wanted)

    # -- detection ---------------------------------------------------------------------------

    def detect(self, desired: DesiredState) -> list[Drift]:
        drifts: list[Drift] = []
        names = self._entity_names()
        known = set(names.values())
        holders = {district_id(d): u for d, u in desired.holders.items()}
        for district, holder in sorted(holders.items()):
            wanted = {holder} if holder else set()
            drifts.extend(self._membership(district_group(district), wanted, names, known))
        for role, usernames in sorted((desired.roles or {}).items()):
            drifts.extend(
                self._membership(
                    ROLE_GROUPS[role], set(usernames), names, known, token=self._role_token
                )
            )
        drifts.extend(self._accounts(desired, holders))
        for drift in drifts:
            log.warning(
                "custody.app.reconcile.drift",
                kind=str(drift.kind),
                subject=drift.subject,
                repair=str(drift.repair),
            )
        return drifts

    def _entity_names(self) -> dict[str, str]:
        try:
            body = self._client.request(
                "GET", "identity/entity/id", operation="reconcile", params={"list": "true"}
            )
        except VaultNotFoundError:
            return {}
        info = ((body or {}).get("data") or {}).get("key_info") or {}
        accessor = self._access.mount_accessor()
        # People are their logins: an entity is named by its userpass alias (custody.app.access).
        return {str(i): login_name(v, accessor) or str(i) for i, v in info.items()}

    def _membership(
        self,
        group: str,
        wanted: set[str],
        names: Mapping[str, str],
        known: set[str],
        *,
        token: str | None = None,
    ) -> list[Drift]:
        client = self._client if token is None else self._client.with_token(token)
        try:
            body = client.read(f"identity/group/name/{group}", operation="reconcile")
        except VaultNotFoundError:
            return [Drift(DriftKind.MISSING_GROUP, group, "present", "missing")]
        ids = (body.get("data") or {}).get("member_entity_ids") or []
        actual = {names.get(str(i), str(i)) for i in ids}
        drifts = [
            Drift(DriftKind.UNKNOWN_PERSON, group, username, "no identity")
            for username in sorted(wanted - known)
        ]
        reachable = wanted & known  # fail closed: an unknown person is simply not granted
        if actual != reachable:
            drifts.append(
                Drift(
                    DriftKind.MEMBERSHIP,
                    group,
                    ",".join(sorted(reachable)),
                    ",".join(sorted(actual)),
                    {"group": group},
                )
            )
        return drifts

    def _listing(self, prefix: str, districts: set[str]) -> set[str]:
        found = set()
        present = {
            k.rstrip("/")
            for k in self._client.list(
                f"{self._mounts.kv}/metadata/{prefix}/", operation="reconcile"
            )
        }
        for district in sorted(districts & present):
            for key in self._client.list(
                f"{self._mounts.kv}/metadata/{prefix}/{district}/", operation="reconcile"
            ):
                if not key.endswith("/"):
                    found.add(f"{district}-{key}")
        return found

    def _metadata(self, ref: AccountRef, staged: bool) -> dict[str, Any] | None:
        try:
            body = self._client.read(ref.metadata_path(self._mounts, staged), operation="reconcile")
        except VaultNotFoundError:
            return None
        data: dict[str, Any] = body.get("data") or {}
        return data

    def _accounts(self, desired: DesiredState, holders: Mapping[str, str | None]) -> list[Drift]:
        expected = {AccountRef.parse(a).name: s for a, s in desired.accounts.items()}
        districts = set(holders) | {AccountRef.parse(a).district for a in expected}
        current = self._listing(CURRENT, districts)
        staged = self._listing(STAGED, districts)
        drifts: list[Drift] = []
        for name in sorted(set(expected) | current | staged):
            drifts.extend(self._account(AccountRef.parse(name), expected.get(name), name in staged))
        return drifts

    def _account(
        self, ref: AccountRef, state: AccountState | None, has_staged: bool
    ) -> list[Drift]:
        name = ref.name
        meta = self._metadata(ref, staged=False) or {}
        vault_version = int(meta.get("current_version") or 0)
        tag = (meta.get("custom_metadata") or {}).get("ledger_event_id")
        staged_meta = self._metadata(ref, staged=True) if has_staged else None
        staged_event = ((staged_meta or {}).get("custom_metadata") or {}).get("ledger_event_id")
        staged_versions = int((staged_meta or {}).get("current_version") or 0)
        drifts: list[Drift] = []
        if state is None:
            if vault_version > 0:
                drifts.append(
                    Drift(DriftKind.UNKNOWN_ACCOUNT, name, "none", f"version {vault_version}")
                )
            rotation = None
        else:
            rotation = state.open_rotation
            ledger_version = state.current_version
            if vault_version < ledger_version:
                drifts.append(
                    Drift(
                        DriftKind.LEDGER_AHEAD,
                        name,
                        f"version {ledger_version}",
                        f"version {vault_version}",
                    )
                )
            elif vault_version > ledger_version:
                if rotation and tag == rotation and vault_version == ledger_version + 1:
                    facts = {
                        "account": name,
                        "rotation_event_id": rotation,
                        "version": str(vault_version),
                        "previous_version": str(ledger_version),
                        "fingerprint": str((meta.get("custom_metadata") or {}).get("fingerprint")),
                    }
                    drifts.append(
                        Drift(
                            DriftKind.CONFIRMED_UNRECORDED,
                            name,
                            f"version {ledger_version}",
                            f"version {vault_version}",
                            facts,
                        )
                    )
                else:
                    drifts.append(
                        Drift(
                            DriftKind.UNRECORDED_VERSION,
                            name,
                            f"version {ledger_version}",
                            f"version {vault_version}",
                            {"ledger_event_id": str(tag)},
                        )
                    )
            elif rotation and staged_versions == 0:
                drifts.append(
                    Drift(
                        DriftKind.STAGED_MISSING,
                        name,
                        f"staged for {rotation}",
                        "nothing staged",
                        {"account": name, "rotation_event_id": rotation},
                    )
                )
        if state is not None and state.totp_fingerprint:
            drifts.extend(self._seed(ref, state.totp_fingerprint))
        untagged = (
            state is not None
            and rotation is not None
            and state.staged_version is not None
            and state.staged_fingerprint is not None
            and staged_meta is not None
            and staged_event is None
            and staged_versions == 1
        )
        if untagged and state is not None:
            drifts.append(
                Drift(
                    DriftKind.STAGED_UNTAGGED,
                    name,
                    f"staged for {rotation}",
                    "staged without a tag",
                    {
                        "account": name,
                        "ledger_event_id": str(rotation),
                        "base_version": str(state.current_version),
                        "version": str(state.staged_version),
                        "fingerprint": str(state.staged_fingerprint),
                        "metadata_version": str(
                            int((staged_meta or {}).get("current_metadata_version") or 0)
                        ),
                    },
                )
            )
        explained = untagged or (
            rotation is not None and staged_event == rotation and staged_versions > 0
        )
        # Staged for the rotation the current version is tagged with: the leftover of a finished
        # confirmation (e.g. one recorded by a ledger repair), never a rotation in flight.
        finished = staged_event is not None and staged_event == tag
        if staged_meta is not None and not explained and (finished or self._aged(staged_meta)):
            drifts.append(
                Drift(
                    DriftKind.ORPHAN_STAGED,
                    name,
                    f"staged for {rotation}" if rotation else "nothing staged",
                    f"staged for {staged_event}",
                    {"account": name},
                )
            )
        return drifts

    def _seed(self, ref: AccountRef, fingerprint: str) -> list[Drift]:
        """The account's TOTP key must be the seed the ledger registered: Custodia writes the
        seed's keyed fingerprint as the key's ``account_name``; a seed imported straight into
        OpenBao (outside the ledger) carries anything else (finding 11). Never repaired here:
        the seed is unreadable, a person investigates and registers it again."""
        try:
            body = self._client.read(ref.totp_key_path(self._mounts), operation="reconcile")
        except VaultNotFoundError:
            return [Drift(DriftKind.SEED_MISSING, ref.name, "seed registered", "no seed")]
        found = str((body.get("data") or {}).get("account_name") or "")
        if found != seed_tag(fingerprint):
            return [
                Drift(
                    DriftKind.SEED_UNRECORDED,
                    ref.name,
                    "the seed registered in the ledger",
                    "another seed",
                )
            ]
        return []

    def _aged(self, staged_meta: Mapping[str, Any]) -> bool:
        created = parse_time(staged_meta.get("updated_time")) or parse_time(
            staged_meta.get("created_time")
        )
        return created is None or self._clock() - created >= self._grace

    # -- repair ------------------------------------------------------------------------------

    def _retag(self, facts: Mapping[str, str]) -> None:
        """Write the open rotation's tag again, from the ledger's facts; check-and-set on the
        metadata version seen when the drift was found (a rotation tagging it meanwhile wins)."""
        ref = AccountRef.parse(facts["account"])
        self._client.write(
            ref.metadata_path(self._mounts, staged=True),
            {
                "custom_metadata": {
                    key: facts[key]
                    for key in ("ledger_event_id", "base_version", "version", "fingerprint")
                },
                "metadata_cas": int(facts["metadata_version"]),
            },
            operation="reconcile",
            account=ref.name,
        )

    def repair(
        self, drifts: list[Drift], *, still_wanted: Callable[[Drift], bool] | None = None
    ) -> ReconcileReport:
        """Repair the Vault-side drifts; the others are returned as pending.

        ``still_wanted`` is asked right before each Vault write, with the ledger as it is *now*:
        a designation recorded after the desired state was read must not be undone by a repair
        computed from the older state (the command service passes a check against its current
        projection, or serialises reconciliation with commands per district).
        """
        report = ReconcileReport(drifts=list(drifts))
        for drift in drifts:
            if drift.repair is not Repair.VAULT:
                report.pending.append(drift)
                continue
            if still_wanted is not None and not still_wanted(drift):
                log.info(
                    "custody.app.reconcile.skipped", kind=str(drift.kind), subject=drift.subject
                )
                continue
            try:
                if drift.kind is DriftKind.MEMBERSHIP:
                    wanted = [u for u in drift.expected.split(",") if u]
                    group = drift.facts["group"]
                    role_group = group in ROLE_GROUPS.values()
                    self._access.set_members(
                        group, wanted, caller_token=self._role_token if role_group else None
                    )
                elif drift.kind is DriftKind.STAGED_UNTAGGED:
                    self._retag(drift.facts)
                elif drift.kind is DriftKind.ORPHAN_STAGED:
                    ref = AccountRef.parse(drift.facts["account"])
                    self._client.delete(
                        ref.metadata_path(self._mounts, staged=True), operation="reconcile"
                    )
            except CustodiaError as error:
                log.error(
                    "custody.app.reconcile.repair_failed",
                    kind=str(drift.kind),
                    subject=drift.subject,
                    error=type(error).__name__,
                )
                report.failed.append(drift)
                continue
            log.info("custody.app.reconcile.repaired", kind=str(drift.kind), subject=drift.subject)
            report.repaired.append(drift)
        return report


class Reconciliation(UseCases):
    """The ledger's side of reconciliation: its desired state, the check, the ledger-side repair."""

    def desired_state(self) -> DesiredState:
        """The ledger's view of OpenBao, as :class:`custody.app.reconcile.DesiredState`."""
        now = self.clock()
        holders: dict[str, str | None] = {}
        accounts: dict[str, AccountState] = {}
        for code in DistrictId.all():
            district = self.ledger.district(code)
            holders[str(code)] = self.ledger.username_of(district.holder_at(now))
            for acc in district.accounts.values():
                if acc.is_open:
                    accounts[acc.account_id] = AccountState(
                        current_version=acc.current_version or 0,
                        # The start event's rotation id; for a version 1 event (no id),
                        # the id that version derived for an account never abandoned.
                        open_rotation=(
                            (
                                acc.staged_rotation_id
                                or str(
                                    uuid5(
                                        REQUEST_NAMESPACE,
                                        f"{acc.account_id}:{acc.staged_version}",
                                    )
                                )
                            )
                            if acc.staged_version
                            else None
                        ),
                        staged_version=acc.staged_version,
                        staged_fingerprint=acc.staged_fingerprint,
                        totp_fingerprint=acc.totp_fingerprint or None,
                    )
        roles: dict[str, list[str]] = {"coadministrador": [], "titular": [], "secretaria": []}
        for person in self.ledger.all_of(Person):
            for role in person.roles:
                if role in roles and not person.erased:
                    roles[role].append(person.username)
        return DesiredState(holders=holders, accounts=accounts, roles=roles)

    def reconcile(self, actor: Actor, repair: bool) -> dict[str, Any]:
        """Compare OpenBao with the ledger; repair both sides (coadministrators only)."""
        by = self.ledger.person(actor.username)
        require_coadministrator(by, "reconcile")
        # The service's own client; the role groups with the coadministrator's token.
        reconciler = Reconciler(
            self.access._client, role_token=actor.token, grace=self.reconcile_grace
        )
        report = reconciler.reconcile(self.desired_state(), repair=repair)
        repaired, pending = len(report.repaired), len(report.pending)
        if repair:
            # The ledger-side repair (custody.app.reconcile): a confirmation OpenBao has and the
            # ledger lacks (its write failed after OpenBao's) is recorded; the staged leftover
            # it leaves is then deleted by a second, OpenBao-side pass.
            recorded = [d for d in report.pending if d.kind == DriftKind.CONFIRMED_UNRECORDED]
            for drift in recorded:
                self._record_confirmation(by, drift.facts)
            if recorded:
                again = reconciler.reconcile(self.desired_state(), repair=True)
                repaired += len(recorded) + len(again.repaired)
                pending = len(again.pending)
        return {
            "diferencias": [
                {"tipo": d.kind, "objeto": d.subject, "esperado": d.expected, "actual": d.actual}
                for d in report.drifts
            ],
            "reparadas": repaired,
            "pendientes": pending,
        }

    def _record_confirmation(self, by: Person, facts: Mapping[str, str]) -> None:
        """Record a rotation confirmation found in OpenBao only (``confirmed_unrecorded``)."""
        account_id = parse_account_id(facts["account"])
        with self.ledger.lock(str(account_id.district)):
            district = self.ledger.district(account_id.district)
            district.confirm_rotation(
                str(account_id), version=int(facts["version"]), by=by, at=self.clock()
            )
            self.ledger.save(district)
