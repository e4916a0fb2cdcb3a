"""Errors of the ledger services (all :class:`events.merkle.LedgerError`)::

LedgerError
├── LedgerDivergedError    the follower found the stream inconsistent with what was signed
├── AnchorConflictError    another writer moved the anchored head first (check-and-set)
├── KeyringFileError       a public-key file cannot be used
├── WitnessFileError       a witness file cannot be used
├── NoCheckpointError      the ledger has no signed checkpoint yet
└── EntryNotFoundError     no entry (or notification id) to prove
"""

from __future__ import annotations

from pathlib import Path

from events.merkle import LedgerError


class LedgerDivergedError(LedgerError):
    """The events stream does not extend what the checkpoints signed; nothing more is signed.

    ``sequence`` is the first entry found wrong when known (a hole), else None.
    """

    def __init__(self, reason: str, sequence: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sequence = sequence


class AnchorConflictError(LedgerError):
    """The anchored head is no longer at ``expected_version``: another follower advanced it."""

    def __init__(self, expected_version: int) -> None:
        super().__init__(f"the anchored head moved past version {expected_version}")
        self.expected_version = expected_version


class KeyringFileError(LedgerError):
    """A public keyring file is missing, unreadable or not a keyring."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class WitnessFileError(LedgerError):
    """A witness file is unreadable, for another log, or holds checkpoints that do not verify."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class NoCheckpointError(LedgerError):
    """The ledger has no signed checkpoint yet (the follower has not published one)."""


class EntryNotFoundError(LedgerError):
    """The entry or notification id is not in the ledger, or not covered by a checkpoint."""

    def __init__(self, what: str, value: int, covered: int | None = None) -> None:
        super().__init__(f"{what} {value} not found (latest checkpoint covers {covered})")
        self.what = what
        self.value = value
        self.covered = covered
