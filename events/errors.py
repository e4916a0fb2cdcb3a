"""Custodia's error tree.

Every error Custodia raises on purpose derives from :class:`CustodiaError`. Errors carry the
facts (identifiers, states), never secret material; the Spanish text a user reads is produced at
the command line from the error's class and attributes (``cli.messages``).

::

    CustodiaError
    ├── ConfigurationError          bad or missing configuration (environment, policy file)
    ├── DomainError                 a command refused by the domain model (events/)
    │   ├── ValidationError         malformed input: identifiers, choices, text, e-mail, phone,
    │   │                           handle, vía oficial, naive datetime, absence period
    │   ├── TimeOrderError          a command dated before its aggregate's last event
    │   ├── PermissionDeniedError   NotCoadministratorError, NotDistrictAuthorityError,
    │   │                           NotEntitledToReadError (6.IX), NotAllowedToReportError,
    │   │                           SelfRevocationError
    │   ├── RoleConflictError, NotDesignatableError, DistrictMismatchError
    │   ├── DistrictStateError      NoAdministratorError, AlreadyAdministratorError,
    │   │                           AbsenceAlreadyReportedError, NoAbsenceError
    │   ├── AccountStateError       AccountNotFound/AlreadyRegistered/Closed/PolicyViolation,
    │   │                           RotationInProgress, NoRotationInProgress, RotationVersion,
    │   │                           NoCurrentCredential, CredentialVersion, TotpNotRegistered
    │   ├── PersonStateError        PersonalDataErased, PersonStillActive, RoleAlreadyGranted,
    │   │                           RoleNotGranted, DeviceAlreadyRegistered, DeviceNotRegistered
    │   ├── InvalidTransitionError  a change request or incident in the wrong state
    │   └── ChangeRequestMismatchError, ChangeNotRecordedError, ContainmentWithoutRotationError
    │                               (the full tree with docs: events.domain.errors)
    ├── InfrastructureError         a server we depend on misbehaved
    │   ├── EventStoreError         NATS JetStream (events.jetstream)
    │   └── VaultError              OpenBao / Vault (custody.vault.client)
    ├── LedgerError                 tamper-evident ledger (events.merkle/checkpoint/ledger_verify)
    │   └── ...                     InvalidProofError, CheckpointError (MalformedCheckpointError,
    │                               WrongOriginError, UnknownKeyError, BadSignatureError),
    │                               WitnessConflictError, BundleError
    └── StackError                  the embedded server supervisor (custody.stack.embedded)

Subclasses are declared next to the code that raises them and documented here when added.
"""

from __future__ import annotations


class CustodiaError(Exception):
    """Base of every error Custodia raises on purpose."""


class ConfigurationError(CustodiaError):
    """Configuration is missing or invalid; ``name`` is the variable or key at fault."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


class DomainError(CustodiaError):
    """A command was refused by the domain model."""


class InfrastructureError(CustodiaError):
    """A server Custodia depends on failed or refused an operation."""


class EventStoreError(InfrastructureError):
    """The event store (NATS JetStream) failed."""


class VaultError(InfrastructureError):
    """The secrets server (OpenBao / Vault) failed or refused."""


class StackError(CustodiaError):
    """The embedded server supervisor could not start, stop or find its servers."""
