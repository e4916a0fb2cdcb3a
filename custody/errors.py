"""Errors raised by the Vault side of Custodia (``custody.vault.client`` and the modules above it).

Every error carries facts — a Vault path, an operation, an account, a version — and never secret
material: no password, token, wrapping token, seed or TOTP code, and no server error text for a
request whose body carried a secret. The Spanish text is made by the command line from the class
and these attributes (``cli.messages``). The tree, below :class:`events.errors.CustodiaError`::

    InfrastructureError
    └── VaultError
        ├── VaultUnreachableError          nothing answers at the address (connection, timeout)
        ├── VaultSealedError               the server answers but is sealed
        ├── VaultUnavailableError          standby, rate limited, bad gateway: try again later
        ├── VaultServerError               the server failed (5xx) or answered nonsense
        ├── VaultPermissionDeniedError     the server refused: the token's policies do not allow it
        ├── VaultTokenInvalidError         the token is revoked, expired or unknown
        ├── VaultNotFoundError             nothing at that path (or that version was deleted)
        ├── VaultCasConflictError          check-and-set refused: someone wrote first
        ├── VaultInvalidRequestError       the server rejected the request's input
        ├── VaultLayoutError               a mount or object exists with the wrong shape
        ├── WrappingTokenInvalidError      a wrapping token was already used, revoked or expired
        └── WrappingPathMismatchError      a wrapping token wraps something other than expected
    CustodyInputError                      bad input caught before any request is made
                                           (a user name: the domain's InvalidUsernameError)
    ├── InvalidAccountError                not an account identifier (``DD05-x``)
    ├── InvalidDistrictError               not a district (``DD01`` … ``DD33``)
    ├── InvalidPersonIdError               not a usable person id (for a transit key name)
    ├── UnknownRoleError                   a role without a group of its own (administrador)
    └── InvalidOtpauthUriError             not an acceptable ``otpauth://totp/`` URI
    CustodyStateError                      Vault's state does not allow the operation
    ├── NoStagedRotationError              nothing staged for the account
    ├── RotationMismatchError              the staged credential belongs to another rotation
    ├── UnknownPersonError                 no identity entity for that user name
    ├── IdentityConflictError              a login alias already belongs to another entity
    ├── LoginTakenError                    a login of that name exists and is not the one given
    ├── PersonalDataErasedError            the person's personal-data key was erased
    └── AccountDestructionPendingError     closed in the ledger; its secrets not yet destroyed
"""

from __future__ import annotations

# Re-exported: a user name has one parser and one error, the domain's (events.domain.Username).
from events.domain.errors import InvalidUsernameError as InvalidUsernameError
from events.errors import CustodiaError, VaultError


class VaultUnreachableError(VaultError):
    """Nothing answered at the OpenBao/Vault address (refused, timed out, TLS failure)."""

    def __init__(self, addr: str, operation: str, reason: str) -> None:
        super().__init__(f"OpenBao/Vault at {addr} unreachable during {operation}: {reason}")
        self.addr = addr
        self.operation = operation
        self.reason = reason


class VaultSealedError(VaultError):
    """The server answered but is sealed: no secret can be read or written until unsealed."""

    def __init__(self, addr: str, operation: str) -> None:
        super().__init__(f"OpenBao/Vault at {addr} is sealed ({operation})")
        self.addr = addr
        self.operation = operation


class VaultUnavailableError(VaultError):
    """The server cannot serve now (standby without forwarding, rate limit, bad gateway)."""

    def __init__(self, addr: str, operation: str, status: int) -> None:
        super().__init__(f"OpenBao/Vault at {addr} unavailable ({status}) during {operation}")
        self.addr = addr
        self.operation = operation
        self.status = status


class VaultServerError(VaultError):
    """The server failed (5xx) or answered something Custodia cannot understand."""

    def __init__(self, operation: str, path: str, status: int | None) -> None:
        super().__init__(f"OpenBao/Vault failed during {operation} on {path} (status {status})")
        self.operation = operation
        self.path = path
        self.status = status


class VaultPermissionDeniedError(VaultError):
    """The server refused the operation: the token's policies do not grant it (403)."""

    def __init__(self, operation: str, path: str, account: str | None = None) -> None:
        super().__init__(f"permission denied by OpenBao/Vault: {operation} on {path}")
        self.operation = operation
        self.path = path
        self.account = account
        self.status = 403


class LoginRefusedError(VaultPermissionDeniedError):
    """OpenBao refused a login: a wrong user name or password, or a login locked out for a
    while after failed attempts (OpenBao does not say which)."""

    def __init__(self, username: str, path: str) -> None:
        super().__init__("login", path)
        self.username = username


class OwnPasswordDeniedError(VaultPermissionDeniedError):
    """OpenBao refused a person's change of their own password: their login lacks the token
    policy ``custodia-contrasena-propia`` (made before it existed, and ``custodia init`` has not
    run since with the administrative token)."""

    def __init__(self, username: str, path: str) -> None:
        super().__init__("own-password", path)
        self.username = username


class SecondFactorRequiredError(VaultError):
    """OpenBao requires a second factor (login MFA, TOTP) for this login and none was given."""

    def __init__(self, username: str) -> None:
        super().__init__(f"OpenBao requires a second factor for {username}")
        self.username = username


class SecondFactorRefusedError(VaultError):
    """OpenBao refused the second factor: a wrong code, or one already used (403)."""

    def __init__(self, username: str) -> None:
        super().__init__(f"OpenBao refused the second factor of {username}")
        self.username = username
        self.status = 403


class VaultTokenInvalidError(VaultError):
    """The token presented is revoked, expired or unknown to the server."""

    def __init__(self, operation: str) -> None:
        super().__init__(f"the OpenBao/Vault token is not valid ({operation})")
        self.operation = operation


class VaultNotFoundError(VaultError):
    """Nothing exists at the path (or the requested version was deleted or destroyed)."""

    def __init__(self, operation: str, path: str, account: str | None = None) -> None:
        super().__init__(f"not found in OpenBao/Vault: {operation} on {path}")
        self.operation = operation
        self.path = path
        self.account = account


class VaultCasConflictError(VaultError):
    """A check-and-set write was refused: the current version is not the one expected."""

    def __init__(
        self,
        operation: str,
        path: str,
        account: str | None = None,
        expected_version: int | None = None,
        actual_version: int | None = None,
    ) -> None:
        super().__init__(
            f"check-and-set conflict on {path} during {operation}: expected version "
            f"{expected_version}, found {actual_version if actual_version is not None else '?'}"
        )
        self.operation = operation
        self.path = path
        self.account = account
        self.expected_version = expected_version
        self.actual_version = actual_version


class VaultInvalidRequestError(VaultError):
    """The server rejected the request's input (400); ``reason`` is omitted for secret bodies."""

    def __init__(self, operation: str, path: str, reason: str | None = None) -> None:
        super().__init__(
            f"OpenBao/Vault rejected {operation} on {path}" + (f": {reason}" if reason else "")
        )
        self.operation = operation
        self.path = path
        self.reason = reason


class VaultLayoutError(VaultError):
    """A mount, method or object exists in OpenBao/Vault with a shape Custodia cannot use."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"OpenBao/Vault layout problem at {path}: {problem}")
        self.path = path
        self.problem = problem


class WrappingTokenInvalidError(VaultError):
    """A wrapping token was already unwrapped, revoked or has expired (single use, short TTL).

    If the legitimate recipient meets this for a token it has never used, someone else unwrapped
    it first: treat it as a possible interception.
    """

    def __init__(self, operation: str, account: str | None = None) -> None:
        super().__init__(f"the wrapping token is not valid or was already used ({operation})")
        self.operation = operation
        self.account = account


class WrappingPathMismatchError(VaultError):
    """A wrapping token does not wrap the response that was expected (wrong creation path)."""

    def __init__(self, expected_path: str, actual_path: str) -> None:
        super().__init__(f"the wrapping token wraps {actual_path}, expected {expected_path}")
        self.expected_path = expected_path
        self.actual_path = actual_path


class CustodyInputError(CustodiaError):
    """Input rejected by ``custody`` before any request reaches OpenBao/Vault."""


class InvalidAccountError(CustodyInputError):
    """Not an account identifier: a district and a platform, such as ``DD05-x``."""

    def __init__(self, value: str) -> None:
        super().__init__(f"not an account identifier: {value!r}")
        self.value = value


class InvalidDistrictError(CustodyInputError):
    """Not one of the 33 districts ``DD01`` … ``DD33``."""

    def __init__(self, value: str) -> None:
        super().__init__(f"not a district: {value!r}")
        self.value = value


class InvalidPersonIdError(CustodyInputError):
    """Not a usable person id (it names a transit key: letters, digits and ``-`` only)."""

    def __init__(self, value: str) -> None:
        super().__init__(f"not a valid person id: {value!r}")
        self.value = value


class UnknownRoleError(CustodyInputError):
    """The role has no group of its own (an administrador gets access only by designation)."""

    def __init__(self, role: str) -> None:
        super().__init__(f"role {role!r} has no group")
        self.role = role


class InvalidOtpauthUriError(CustodyInputError):
    """The 2FA URI is not an acceptable ``otpauth://totp/`` URI; ``problem`` names the part."""

    def __init__(self, account: str, problem: str) -> None:
        super().__init__(f"invalid otpauth URI for {account}: {problem}")
        self.account = account
        self.problem = problem


class CustodyStateError(CustodiaError):
    """OpenBao/Vault's state does not allow the operation now."""


class NoStagedRotationError(CustodyStateError):
    """There is no staged (pending) credential for the account."""

    def __init__(self, account: str) -> None:
        super().__init__(f"no staged credential for {account}")
        self.account = account


class RotationMismatchError(CustodyStateError):
    """The staged credential belongs to another rotation than the one named."""

    def __init__(self, account: str, expected_event: str, staged_event: str | None) -> None:
        super().__init__(
            f"the staged credential of {account} belongs to rotation {staged_event}, "
            f"not {expected_event}"
        )
        self.account = account
        self.expected_event = expected_event
        self.staged_event = staged_event


class UnknownPersonError(CustodyStateError):
    """No identity entity exists for the user name (register the person first)."""

    def __init__(self, username: str) -> None:
        super().__init__(f"no OpenBao/Vault identity for user {username!r}")
        self.username = username


class LoginTakenError(CustodyStateError):
    """OpenBao refused to create the login: one of that name exists, and the password given
    does not open it (so it is not a login an earlier attempt of this registration created)."""

    def __init__(self, username: str) -> None:
        super().__init__(f"a login named {username!r} already exists")
        self.username = username


class IdentityConflictError(CustodyStateError):
    """A login alias for the user name already belongs to a different identity entity."""

    def __init__(self, username: str, mount: str) -> None:
        super().__init__(f"the {mount} alias {username!r} belongs to another entity")
        self.username = username
        self.mount = mount


class PersonalDataErasedError(CustodyStateError):
    """The person's personal-data key was erased: their sealed data is gone for good."""

    def __init__(self, person_id: str) -> None:
        super().__init__(f"personal data of {person_id} was erased")
        self.person_id = person_id


class AccountDestructionPendingError(CustodyStateError):
    """10: the closure of ``account`` is recorded but OpenBao did not destroy its secrets
    (``reason``: the error's class name); ``cuentas baja`` again finishes it."""

    def __init__(self, account: str, reason: str) -> None:
        super().__init__(f"closure of {account} recorded; destruction of its secrets pending")
        self.account = account
        self.reason = reason
