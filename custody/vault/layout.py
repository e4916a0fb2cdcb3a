"""Custodia's layout in OpenBao/Vault, created idempotently (``custodia init``).

::

    <kv>/            KV v2, cas_required, max_versions 10
        cuentas/DD05/x          the current credential of account DD05-x      {"password": ...}
        preparadas/DD05/x       a staged (pending) credential, one at a time   {"password": ...}
        pii-borrados/<person>   metadata-only tombstones of erased personal-data keys
    <totp>/          TOTP engine: keys/DD05-x (imported seeds, write-only), code/DD05-x
    <transit>/       custodia-ledger (ed25519, not exportable: signs ledger checkpoints),
                     custodia-fingerprint (hmac: keyed fingerprints), pii-<person-id> (per person),
                     custodia-solicitudes (aes256-gcm96, derived: password arguments of requests)
    auth/<userpass>/ people's logins (OIDC/JWT instead: deploy/openbao/README.md)
    identity groups  coadministradores, titulares, secretaria, dd01-administracion … dd33-…
    ACL policies     custodia-coadministrador, custodia-titular, custodia-secretaria,
                     custodia-administrador-dd01 … -dd33 (one template), custodia-servicio
    custodia-acceso/ NOT a mount: marker paths, ``<district>/<operation>/<platform>``, that
                     people's policies grant (``read``) and that hold nothing. The service asks
                     OpenBao for the caller's capabilities on one (``sys/capabilities-self``,
                     the caller's token) before it makes that operation for them (issue 16,
                     finding 2: people's tokens read no secret; see custody.vault.credentials).

Policies are code: the canonical templates are ``custody/vault/policies/*.hcl`` (shipped inside the
package so an installed Custodia can load them); ``deploy/openbao/policies/`` holds the same
policies rendered for the default mounts, for operators and reviewers, regenerated with
``python -m custody.vault.layout deploy/openbao/policies`` and kept identical by a unit test.

Why one policy per district rather than one templated policy reading group metadata: a
district's access is then a plain, reviewable document; a person covering two districts during
a substitution simply belongs to two groups; and nothing depends on identity templating, which
behaves the same on OpenBao and HashiCorp Vault only for a subset of parameters.
"""

from __future__ import annotations

import re
import string
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from custody.errors import (
    InvalidAccountError,
    InvalidDistrictError,
    VaultInvalidRequestError,
    VaultLayoutError,
    VaultNotFoundError,
)
from custody.vault.client import Mounts, VaultClient

log = structlog.get_logger()

DISTRICTS: tuple[str, ...] = tuple(f"DD{n:02d}" for n in range(1, 34))

CURRENT = "cuentas"
STAGED = "preparadas"
ERASED = "pii-borrados"

LEDGER_KEY = "custodia-ledger"
FINGERPRINT_KEY = "custodia-fingerprint"
REQUEST_KEY = "custodia-solicitudes"  # seals password arguments of requests (sealed_args)

#: Authorization markers (issue 16, finding 2): never mounted; ensure_layout refuses a mount here.
ACCESS_PREFIX = "custodia-acceso"
#: The operations the service makes on a secret for a person, each with its own marker:
#: revelar (current credential, wrapped), codigo (2FA code, wrapped), preparar / confirmar /
#: abandonar (a rotation, 6.X), semilla (import a 2FA seed).
# "destruir": a closed account's password and 2FA seed are destroyed (10; cuentas baja).
ACCESS_OPERATIONS = (
    "revelar",
    "codigo",
    "preparar",
    "confirmar",
    "abandonar",
    "semilla",
    "destruir",
)

COADMIN_GROUP = "coadministradores"
TITULAR_GROUP = "titulares"
SECRETARIA_GROUP = "secretaria"
#: Role (as the domain names it) → the identity group that carries it. ``administrador`` has no
#: role group: an administrator's access comes only from a district group, through designation.
ROLE_GROUPS: Mapping[str, str] = {
    "coadministrador": COADMIN_GROUP,
    "titular": TITULAR_GROUP,
    "secretaria": SECRETARIA_GROUP,
}

COADMIN_POLICY = "custodia-coadministrador"
TITULAR_POLICY = "custodia-titular"
SECRETARIA_POLICY = "custodia-secretaria"
SERVICE_POLICY = "custodia-servicio"
#: Where the ledger's anchored head, witnesses and alerts live in the KV mount (custody.ledger).
LEDGER_RECORDS = "bitacora"
SIGNER_POLICY = "custodia-firmante"  # the ledger follower's own token (custody.ledger.anchor)

# Issue 18, the second factor: OpenBao's login MFA (TOTP), enforced on one identity group whose
# members are the people who can read credentials (coadministrators, administrators). Their
# first login enrols the factor through the service, with a token of the first-login mount
# (Mounts.first_login) that holds no policy at all. Nothing writes an ACL policy at run time: the
# two policies that pin the method's id are written once by ``custodia init``.
MFA_METHOD_NAME = "custodia-segundo-factor"
MFA_ISSUER = "IECM Custodia"
MFA_GROUP = "custodia-segundo-factor"
MFA_ENFORCEMENT = "custodia-segundo-factor"
# A first-login token serves one enrolment: short-lived (and revoked by the service once used).
FIRST_LOGIN_TOKEN_TTL = "15m"  # noqa: S105  # a duration, not a secret
MFA_ENROL_POLICY = "custodia-segundo-factor-inscripcion"  # the service's token
MFA_RESET_POLICY = "custodia-segundo-factor-restablecer"  # the coadministradores group
# A token policy of every userpass login: its own password, nothing else (sesion contrasena).
OWN_PASSWORD_POLICY = "custodia-contrasena-propia"  # noqa: S105  # a policy name, not a secret

KV_MAX_VERSIONS = 10
# People's tokens: a working day, renewable up to a day (userpass mounts Custodia creates).
USER_TOKEN_TTL = "8h"  # noqa: S105  # a duration, not a secret
USER_TOKEN_MAX_TTL = "24h"  # noqa: S105  # a duration, not a secret
# Request tokens (custody.vault.session.request_token): what crosses NATS instead of a session
# token.
# The role bounds them whatever the client asks: OpenBao caps TTL and uses, never an orphan.
# (Defined with the session, which every command reads without importing this module.)
from custody.vault.session import (  # noqa: E402
    REQUEST_TOKEN_MAX_TTL as REQUEST_TOKEN_MAX_TTL,
)
from custody.vault.session import (  # noqa: E402
    REQUEST_TOKEN_MAX_USES as REQUEST_TOKEN_MAX_USES,
)
from custody.vault.session import (  # noqa: E402
    REQUEST_TOKEN_ROLE as REQUEST_TOKEN_ROLE,
)
from custody.vault.session import (  # noqa: E402
    SESSION_TOKEN_ROLE as SESSION_TOKEN_ROLE,
)

# Appended to OpenBao's ``default`` policy, so every login (whatever its groups, or none) may
# make request tokens through the role, and nothing else: not ``auth/token/create`` itself.
# A request token has the default policy too, but OpenBao refuses any child of a use-limited
# token ("restricted use token cannot generate child tokens").
REQUEST_TOKEN_GRANT = f"""
# custodia: request tokens (custody.vault.session.request_token); nothing but their bounds: no
# metadata or display name a token's maker could choose to name someone else in the audit log
path "auth/token/create/{REQUEST_TOKEN_ROLE}" {{
  capabilities = ["update"]
  allowed_parameters = {{
    "policies"  = []
    "ttl"       = []
    "num_uses"  = []
    "renewable" = []
  }}
}}
"""

_DISTRICT_RE = re.compile(r"^(?:dd)?0?(\d{1,2})$", re.IGNORECASE)
_PLATFORM_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def district_id(value: str) -> str:
    """``DD05`` from ``DD05``, ``dd05``, ``05`` or ``5``; :class:`InvalidDistrictError` else."""
    match = _DISTRICT_RE.match(value.strip()) if isinstance(value, str) else None
    if match is None or not 1 <= int(match.group(1)) <= len(DISTRICTS):
        raise InvalidDistrictError(str(value))
    return f"DD{int(match.group(1)):02d}"


def district_group(district: str) -> str:
    """The identity group of a district's account administrator: ``dd05-administracion``."""
    return f"{district_id(district).lower()}-administracion"


def district_policy(district: str) -> str:
    """The ACL policy of a district's administrator group: ``custodia-administrador-dd05``."""
    return f"custodia-administrador-{district_id(district).lower()}"


@dataclass(frozen=True)
class AccountRef:
    """An institutional account, ``DD05-x``: a district and a platform; its paths in Vault."""

    district: str
    platform: str

    @classmethod
    def parse(cls, value: str | AccountRef) -> AccountRef:
        if isinstance(value, AccountRef):
            return value
        if not isinstance(value, str) or "-" not in value:
            raise InvalidAccountError(str(value))
        district_text, platform = value.strip().split("-", 1)
        try:
            district = district_id(district_text)
        except InvalidDistrictError:
            raise InvalidAccountError(value) from None
        platform = platform.lower()
        if not _PLATFORM_RE.match(platform):
            raise InvalidAccountError(value)
        return cls(district, platform)

    @property
    def name(self) -> str:
        return f"{self.district}-{self.platform}"

    def __str__(self) -> str:
        return self.name

    def kv_key(self, staged: bool = False) -> str:
        return f"{STAGED if staged else CURRENT}/{self.district}/{self.platform}"

    def data_path(self, mounts: Mounts, staged: bool = False) -> str:
        return f"{mounts.kv}/data/{self.kv_key(staged)}"

    def metadata_path(self, mounts: Mounts, staged: bool = False) -> str:
        return f"{mounts.kv}/metadata/{self.kv_key(staged)}"

    def totp_key_path(self, mounts: Mounts) -> str:
        return f"{mounts.totp}/keys/{self.name}"

    def totp_code_path(self, mounts: Mounts) -> str:
        return f"{mounts.totp}/code/{self.name}"

    def access_path(self, operation: str) -> str:
        """The marker whose capability OpenBao gives the caller for ``operation`` on this
        account: ``custodia-acceso/DD05/revelar/x`` (see :data:`ACCESS_PREFIX`)."""
        if operation not in ACCESS_OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}")
        return f"{ACCESS_PREFIX}/{self.district}/{operation}/{self.platform}"


# -- policies as code ----------------------------------------------------------------------


POLICY_DIR = Path(__file__).with_name("policies")


def _template(name: str) -> string.Template:
    # Next to this module rather than importlib.resources: setuptools' editable install exposes
    # ``custody`` as a namespace package outside the source tree, where resources.files fails.
    return string.Template((POLICY_DIR / name).read_text(encoding="utf-8"))


def policy_documents(mounts: Mounts | None = None) -> dict[str, str]:
    """Every ACL policy Custodia needs, name → HCL, rendered from the packaged templates."""
    mounts = mounts or Mounts()
    names = {
        "kv": mounts.kv,
        "totp": mounts.totp,
        "transit": mounts.transit,
        "userpass": mounts.userpass,
        "first_login": mounts.first_login,
        "mfa_group": MFA_GROUP,
        "mfa_enforcement": MFA_ENFORCEMENT,
        "access": ACCESS_PREFIX,
        "own_password": OWN_PASSWORD_POLICY,
    }
    # People's own policies: markers only, and an explicit deny on every secret path.
    people_denies = _deny_blocks(secret_paths(mounts))
    coadmin = _template("coadministrador.hcl").substitute(names, secret_denies=people_denies)
    district_template = _template("administrador-distrito.hcl")
    districts = {
        district_policy(d): district_template.substitute(
            names, district=d, district_lower=d.lower(), secret_denies=people_denies
        )
        for d in DISTRICTS
    }
    denies = _deny_blocks(
        secret_grants(
            [coadmin, *districts.values()],
            (mounts.kv, mounts.totp, mounts.transit, ACCESS_PREFIX),
        )
    )
    docs = {
        COADMIN_POLICY: coadmin,
        TITULAR_POLICY: _template("titular.hcl").substitute(names, secret_denies=denies),
        SECRETARIA_POLICY: _template("secretaria.hcl").substitute(names, secret_denies=denies),
        SERVICE_POLICY: _template("servicio.hcl").substitute(
            names, district_groups=_district_group_blocks()
        ),
        SIGNER_POLICY: _template("firmante.hcl").substitute(names),
    }
    docs.update(districts)
    return docs


def second_factor_policies(method_id: str) -> dict[str, str]:
    """The two policies pinned to Custodia's TOTP method (its id is OpenBao's choice, known only
    once the method exists): ``admin-generate`` for the service, ``admin-destroy`` for the
    coadministrators. Written by :func:`ensure_second_factor` with the administrative token."""
    if not re.fullmatch(r"[0-9a-f-]{36}", method_id):
        raise ValueError("not an OpenBao identifier")
    return {
        MFA_ENROL_POLICY: _template("segundo-factor-inscripcion.hcl").substitute(
            method_id=method_id
        ),
        MFA_RESET_POLICY: _template("segundo-factor-restablecer.hcl").substitute(
            method_id=method_id
        ),
    }


def own_password_policy(accessor: str, mounts: Mounts | None = None) -> dict[str, str]:
    """:data:`OWN_PASSWORD_POLICY`, pinned to the userpass mount's accessor (OpenBao's choice,
    known once the mount exists): a login may change its own password and no other."""
    if not re.fullmatch(r"auth_userpass_[0-9a-f]{8}", accessor):
        raise ValueError("not an OpenBao userpass accessor")
    mounts = mounts or Mounts()
    return {
        OWN_PASSWORD_POLICY: _template("contrasena-propia.hcl").substitute(
            userpass=mounts.userpass, accessor=accessor, session_role=SESSION_TOKEN_ROLE
        )
    }


def secret_paths(mounts: Mounts) -> list[str]:
    """The path patterns that hold or yield a secret: current and staged credentials (every
    version: data, metadata and the KV v2 delete/undelete/destroy endpoints), 2FA keys and
    codes, the fingerprint HMAC (an oracle for guessing a password). People's policies deny
    each one (issue 16, finding 2): only the service reaches them, for a verified caller."""
    kv, totp, transit = mounts.kv, mounts.totp, mounts.transit
    paths = [
        f"{kv}/{area}/{tree}/*"
        for tree in (CURRENT, STAGED)
        for area in ("data", "metadata", "delete", "undelete", "destroy")
    ]
    paths += [f"{totp}/keys/*", f"{totp}/code/*"]
    paths += [f"{transit}/hmac/{FINGERPRINT_KEY}", f"{transit}/hmac/{FINGERPRINT_KEY}/*"]
    return paths


_PATH_RE = re.compile(r'^path "([^"]+)"', re.MULTILINE)


def policy_paths(text: str) -> list[str]:
    """The path patterns of a policy document, in order."""
    return _PATH_RE.findall(text)


def secret_grants(documents: list[str], mounts: tuple[str, ...]) -> list[str]:
    """Every path pattern the people's policies (coadministrator, districts) name on the secret
    mounts and the authorization markers: a titular's and a secretaria's deny must be on each
    of them, since OpenBao decides a request by its most specific matching pattern across all
    of a token's policies."""
    found: set[str] = set()
    for text in documents:
        found.update(
            p for p in policy_paths(text) if p.split("/", 1)[0] in mounts and not _ledger_record(p)
        )
    return sorted(found)


def _ledger_record(path: str) -> bool:
    """The ledger's anchored head, witnesses and alerts (``<kv>/{data,metadata}/bitacora/*``):
    no secret; the Secretaría Ejecutiva reads them to verify the ledger, so they are never
    denied to her."""
    parts = path.split("/")
    return len(parts) >= 3 and parts[1] in {"data", "metadata"} and parts[2] == LEDGER_RECORDS


def _deny_blocks(paths: list[str]) -> str:
    return "\n".join(f'path "{p}" {{\n  capabilities = ["deny"]\n}}\n' for p in paths)


def _district_group_blocks() -> str:
    """The service's membership rights: one exact path per district administrator group."""
    return "\n".join(
        f'path "identity/group/name/{district_group(d)}" {{\n'
        '  capabilities = ["read", "update"]\n'
        "  allowed_parameters = {\n"
        '    "member_entity_ids" = []\n'
        "  }\n"
        "}\n"
        for d in DISTRICTS
    )


@dataclass(frozen=True)
class GroupSpec:
    """An identity group Custodia owns: its name, policies and descriptive metadata."""

    name: str
    policies: tuple[str, ...]
    metadata: Mapping[str, str] = field(default_factory=dict)


def group_specs() -> list[GroupSpec]:
    """The 3 role groups and the 33 district administrator groups."""
    specs = [
        GroupSpec(
            COADMIN_GROUP,
            (COADMIN_POLICY, MFA_RESET_POLICY),
            {"custodia": "rol", "rol": "coadministrador"},
        ),
        GroupSpec(TITULAR_GROUP, (TITULAR_POLICY,), {"custodia": "rol", "rol": "titular"}),
        GroupSpec(SECRETARIA_GROUP, (SECRETARIA_POLICY,), {"custodia": "rol", "rol": "secretaria"}),
    ]
    specs.extend(
        GroupSpec(
            district_group(d),
            (district_policy(d),),
            {"custodia": "administracion-distrital", "distrito": d},
        )
        for d in DISTRICTS
    )
    return specs


# -- ensure_layout ---------------------------------------------------------------------------


@dataclass
class LayoutReport:
    """What :func:`ensure_layout` did: names created, updated, or already as wanted."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


def ensure_layout(client: VaultClient, *, second_factor: bool = False) -> LayoutReport:
    """Create or correct Custodia's mounts, keys, policies and groups; safe to run again.

    ``second_factor``: OpenBao enforces the login TOTP factor on the group
    :data:`MFA_GROUP` (``custodia init`` passes the policy file's ``[segundo_factor]
    obligatorio``, true by default); False removes the enforcement (method and group stay).

    Needs an administrative token (root, or one allowed to manage mounts, auth methods,
    policies, identity groups and transit keys). Group members are never touched: membership is
    the access, and only designations (``custody.app.access``) change it.
    """
    report = LayoutReport()
    mounts = client.mounts
    _ensure_mounts(client, report)
    _ensure_userpass(client, report)
    _ensure_userpass(
        client,
        report,
        client.mounts.first_login,
        "Custodia: first logins (second factor)",
        (FIRST_LOGIN_TOKEN_TTL, FIRST_LOGIN_TOKEN_TTL),
    )
    client.write(
        f"{mounts.kv}/config",
        {"cas_required": True, "max_versions": KV_MAX_VERSIONS},
        operation="layout",
    )
    _ensure_transit_key(
        client, report, LEDGER_KEY, {"type": "ed25519", "exportable": False}, "ed25519"
    )
    _ensure_transit_key(client, report, FINGERPRINT_KEY, {"type": "hmac", "key_size": 32}, "hmac")
    _ensure_transit_key(
        client,
        report,
        REQUEST_KEY,
        {"type": "aes256-gcm96", "derived": True, "exportable": False},
        "aes256-gcm96",
    )
    for name, text in policy_documents(mounts).items():
        _ensure_policy(client, report, name, text)
    ensure_own_password(client, report)
    ensure_request_tokens(client, report)
    for spec in group_specs():
        _ensure_group(client, report, spec)
    ensure_second_factor(client, enforce=second_factor, report=report)
    log.info(
        "vault.layout.ensured",
        created=len(report.created),
        updated=len(report.updated),
        unchanged=len(report.unchanged),
    )
    return report


def ensure_second_factor(
    client: VaultClient, *, enforce: bool, report: LayoutReport | None = None
) -> str:
    """The TOTP login method (issuer "IECM Custodia"), the identity group of the people who
    must use it and, with ``enforce``, the login enforcement on that group; the method's id."""
    report = report if report is not None else LayoutReport()
    method_id = mfa_method_id(client)
    if method_id is None:
        body = client.write(
            "identity/mfa/method/totp",
            {
                "method_name": MFA_METHOD_NAME,
                "issuer": MFA_ISSUER,
                "period": 30,
                "key_size": 20,
                "algorithm": "SHA1",
                "digits": 6,
                "skew": 1,
                "qr_size": 200,
                "max_validation_attempts": 5,
            },
            operation="layout",
        )
        method_id = str(((body or {}).get("data") or {}).get("method_id") or "")
        if not method_id:
            raise VaultLayoutError("identity/mfa/method/totp", "no method id in the answer")
        report.created.append(f"mfa:{MFA_METHOD_NAME}")
    else:
        report.unchanged.append(f"mfa:{MFA_METHOD_NAME}")
    for name, text in second_factor_policies(method_id).items():
        _ensure_policy(client, report, name, text)
    _ensure_group(client, report, GroupSpec(MFA_GROUP, (), {"custodia": "segundo-factor"}))
    group = client.read(f"identity/group/name/{MFA_GROUP}", operation="layout")
    group_id = str((group.get("data") or {}).get("id") or "")
    path = f"identity/mfa/login-enforcement/{MFA_ENFORCEMENT}"
    try:
        current = client.read(path, operation="layout").get("data") or {}
    except VaultNotFoundError:
        current = None
    if not enforce:
        if current is not None:
            client.delete(path, operation="layout")
            report.updated.append(f"mfa-enforcement:{MFA_ENFORCEMENT}")
        return method_id
    if (
        current is not None
        and list(current.get("mfa_method_ids") or []) == [method_id]
        and list(current.get("identity_group_ids") or []) == [group_id]
    ):
        report.unchanged.append(f"mfa-enforcement:{MFA_ENFORCEMENT}")
        return method_id
    client.write(
        path,
        {"mfa_method_ids": [method_id], "identity_group_ids": [group_id]},
        operation="layout",
    )
    name = f"mfa-enforcement:{MFA_ENFORCEMENT}"
    (report.created if current is None else report.updated).append(name)
    return method_id


def mfa_method_id(client: VaultClient) -> str | None:
    """The id of Custodia's TOTP login method (by its name), or None if there is none."""
    try:
        body = client.request(
            "GET", "identity/mfa/method/totp", operation="layout", params={"list": "true"}
        )
    except VaultNotFoundError:
        return None
    info = ((body or {}).get("data") or {}).get("key_info") or {}
    for method_id, method in info.items():
        if isinstance(method, dict) and method.get("name") == MFA_METHOD_NAME:
            return str(method_id)
    return None


def ensure_own_password(client: VaultClient, report: LayoutReport | None = None) -> None:
    """:data:`OWN_PASSWORD_POLICY`, and that token policy on every userpass login made before it
    existed (an upgrade; the service makes every new login with it, and cannot add it to an
    existing one). Needs the administrative token, like the rest of the layout."""
    report = report if report is not None else LayoutReport()
    mount = client.mounts.userpass
    body = client.read("sys/auth", operation="layout")
    entry = (body.get("data") or body).get(mount + "/") or {}
    accessor = str(entry.get("accessor") or "")
    for name, text in own_password_policy(accessor, client.mounts).items():
        _ensure_policy(client, report, name, text)
    try:
        listed = client.request(
            "GET", f"auth/{mount}/users", operation="layout", params={"list": "true"}
        )
    except VaultNotFoundError:  # no login yet
        return
    for user in ((listed or {}).get("data") or {}).get("keys") or []:
        path = f"auth/{mount}/users/{user}"
        current = (client.read(path, operation="layout").get("data") or {}).get("token_policies")
        policies = [str(p) for p in current or []]
        if OWN_PASSWORD_POLICY in policies:
            continue
        client.write(path, {"token_policies": [*policies, OWN_PASSWORD_POLICY]}, operation="layout")
        report.updated.append(f"login:{user}")


def ensure_request_tokens(client: VaultClient, report: LayoutReport | None = None) -> None:
    """The token roles ``custodia-solicitud`` (request tokens) and ``custodia-sesion`` (the
    session a login keeps), and the request tokens' grant in the ``default`` policy (the
    session's is in :data:`OWN_PASSWORD_POLICY`: only a login's own token makes a session)."""
    report = report if report is not None else LayoutReport()
    _ensure_token_role(
        client,
        report,
        REQUEST_TOKEN_ROLE,
        {
            # Only ``default`` (the person's groups' policies come with their entity). NOT an
            # empty list with ``disallowed_policies`` set: OpenBao then lets a child have ANY
            # policy but the disallowed ones, including a coadministrator's.
            "allowed_policies": ["default"],
            # ...never a login's own password, however asked: the service holds request tokens.
            "disallowed_policies": [OWN_PASSWORD_POLICY],
            "orphan": False,  # revoking the session revokes its request tokens
            "renewable": False,
            "token_type": "service",
            "token_explicit_max_ttl": REQUEST_TOKEN_MAX_TTL,
            "token_num_uses": REQUEST_TOKEN_MAX_USES,
        },
    )
    _ensure_token_role(
        client,
        report,
        SESSION_TOKEN_ROLE,
        {
            "allowed_policies": ["default"],  # as the request tokens' role, and why
            # A session found open, or its file copied, cannot change the password.
            "disallowed_policies": [OWN_PASSWORD_POLICY],
            # Not an orphan: an orphan would lose the person's entity (and every group policy).
            "orphan": False,
            "renewable": False,
            "token_type": "service",
            "token_explicit_max_ttl": 24 * 3600,  # USER_TOKEN_MAX_TTL, as OpenBao answers it
        },
    )
    body = client.read("sys/policies/acl/default", operation="layout") or {}
    current = str((body.get("data") or {}).get("policy") or "")
    if REQUEST_TOKEN_GRANT.strip() in current:
        report.unchanged.append("policy:default")
        return
    # The grant as an earlier version wrote it (no parameter bounds) goes: one block per path.
    current = current.replace(_OLD_REQUEST_TOKEN_GRANT.strip(), "").rstrip()
    client.write(
        "sys/policies/acl/default",
        {"policy": current + "\n" + REQUEST_TOKEN_GRANT},
        operation="layout",
    )
    report.updated.append("policy:default")


_OLD_REQUEST_TOKEN_GRANT = f"""
# custodia: request tokens (custody.vault.session.request_token)
path "auth/token/create/{REQUEST_TOKEN_ROLE}" {{
  capabilities = ["update"]
}}
"""


def _ensure_token_role(
    client: VaultClient, report: LayoutReport, name: str, wanted: dict[str, Any]
) -> None:
    role = f"auth/token/roles/{name}"
    try:
        current_role = client.read(role, operation="layout").get("data") or {}
    except VaultNotFoundError:
        current_role = None
    if current_role is not None and all(
        (current_role.get(k) or []) == v if k.endswith("_policies") else current_role.get(k) == v
        for k, v in wanted.items()
    ):
        report.unchanged.append(f"token-role:{name}")
        return
    client.write(role, wanted, operation="layout")
    (report.created if current_role is None else report.updated).append(f"token-role:{name}")


# What a KV v2 engine answers while it is still setting itself up after being mounted.
KV_UPGRADING = "Upgrading from non-versioned to versioned data"


def await_kv_ready(client: VaultClient, mount: str, timeout: float = 60.0) -> None:
    """Until the KV v2 engine just mounted at ``mount`` serves requests.

    A new KV v2 mount first upgrades its (empty) storage, and until it is done every request to
    it is refused with :data:`KV_UPGRADING`; on a loaded machine or a raft cluster that lasts
    long enough for the next write of ``custodia init`` to be refused. Its configuration is read
    until it answers (any other refusal is raised as it is)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            client.read(f"{mount}/config", operation="layout")
            return
        except VaultInvalidRequestError as exc:
            if KV_UPGRADING not in (exc.reason or "") or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def _ensure_mounts(client: VaultClient, report: LayoutReport) -> None:
    mounts = client.mounts
    body = client.read("sys/mounts", operation="layout")
    existing: dict[str, Any] = body.get("data") or body
    wanted: list[tuple[str, str, dict[str, Any]]] = [
        (mounts.kv, "kv", {"version": "2"}),
        (mounts.totp, "totp", {}),
        (mounts.transit, "transit", {}),
    ]
    if existing.get(ACCESS_PREFIX + "/") is not None:
        # People's policies grant "read" there: an engine mounted on the markers would serve it.
        raise VaultLayoutError(
            ACCESS_PREFIX, "Custodia's authorization markers must not be mounted"
        )
    for path, kind, options in wanted:
        current = existing.get(path + "/")
        if current is None:
            payload: dict[str, Any] = {"type": kind, "description": f"Custodia ({kind})"}
            if options:
                payload["options"] = options
            client.write(f"sys/mounts/{path}", payload, operation="layout")
            if kind == "kv":
                await_kv_ready(client, path)
            report.created.append(f"mount:{path}")
            continue
        if current.get("type") != kind:
            raise VaultLayoutError(path, f"mounted as {current.get('type')}, expected {kind}")
        if kind == "kv" and str((current.get("options") or {}).get("version")) != "2":
            raise VaultLayoutError(path, "a KV version 1 mount; Custodia needs KV version 2")
        report.unchanged.append(f"mount:{path}")


def _ensure_userpass(
    client: VaultClient,
    report: LayoutReport,
    path: str | None = None,
    description: str = "Custodia: people's logins",
    ttl: tuple[str, str] = (USER_TOKEN_TTL, USER_TOKEN_MAX_TTL),
) -> None:
    path = path or client.mounts.userpass
    body = client.read("sys/auth", operation="layout")
    existing: dict[str, Any] = body.get("data") or body
    current = existing.get(path + "/")
    if current is None:
        client.write(
            f"sys/auth/{path}",
            {"type": "userpass", "description": description},
            operation="layout",
        )
        client.write(
            f"sys/auth/{path}/tune",
            {"default_lease_ttl": ttl[0], "max_lease_ttl": ttl[1]},
            operation="layout",
        )
        report.created.append(f"auth:{path}")
    elif current.get("type") != "userpass":
        raise VaultLayoutError(f"auth/{path}", f"an auth method of type {current.get('type')}")
    else:
        report.unchanged.append(f"auth:{path}")


def _ensure_transit_key(
    client: VaultClient, report: LayoutReport, name: str, params: dict[str, Any], kind: str
) -> None:
    path = f"{client.mounts.transit}/keys/{name}"
    try:
        body = client.read(path, operation="layout")
    except VaultNotFoundError:
        client.write(path, params, operation="layout")
        report.created.append(f"transit:{name}")
        return
    data = body.get("data") or {}
    if data.get("type") != kind:
        raise VaultLayoutError(path, f"a transit key of type {data.get('type')}, expected {kind}")
    if params.get("derived") and not data.get("derived"):
        raise VaultLayoutError(path, "the key is not derived; Custodia binds it to a context")
    if data.get("exportable"):
        raise VaultLayoutError(path, "the key is exportable; Custodia's keys must never leave")
    report.unchanged.append(f"transit:{name}")


def _ensure_policy(client: VaultClient, report: LayoutReport, name: str, text: str) -> None:
    path = f"sys/policies/acl/{name}"
    try:
        body = client.read(path, operation="layout")
        current = (body.get("data") or {}).get("policy") or (body.get("data") or {}).get("rules")
    except VaultNotFoundError:
        current = None
    if current == text:
        report.unchanged.append(f"policy:{name}")
        return
    client.write(path, {"policy": text}, operation="layout")
    (report.created if current is None else report.updated).append(f"policy:{name}")


def _ensure_group(client: VaultClient, report: LayoutReport, spec: GroupSpec) -> None:
    path = f"identity/group/name/{spec.name}"
    try:
        data = client.read(path, operation="layout").get("data") or {}
    except VaultNotFoundError:
        data = None
    wanted_metadata = dict(spec.metadata)
    if data is None:
        client.write(
            path,
            {"type": "internal", "policies": list(spec.policies), "metadata": wanted_metadata},
            operation="layout",
        )
        report.created.append(f"group:{spec.name}")
        return
    if data.get("type") not in (None, "internal"):
        raise VaultLayoutError(path, "an external group; Custodia's groups are internal")
    if (
        sorted(data.get("policies") or []) == sorted(spec.policies)
        and (data.get("metadata") or {}) == wanted_metadata
    ):
        report.unchanged.append(f"group:{spec.name}")
        return
    # Only policies and metadata are sent: members stay as they are (verified by a test).
    client.write(
        path,
        {"policies": list(spec.policies), "metadata": wanted_metadata},
        operation="layout",
    )
    report.updated.append(f"group:{spec.name}")


def create_service_token(
    client: VaultClient,
    *,
    period: str = "24h",
    display_name: str = "custodia-servicio",
    policy: str = SERVICE_POLICY,
) -> str:
    """A periodic orphan token with only ``policy`` (:data:`SERVICE_POLICY`, or
    :data:`SIGNER_POLICY` for the ledger follower) and ``default``.

    The service renews it (``VaultClient.renew_self``) within ``period``. With an external Vault
    an AppRole bound to the same policy is the better source (deploy/openbao/README.md).
    """
    body = client.write(
        "auth/token/create-orphan",
        {
            "policies": [policy, MFA_ENROL_POLICY] if policy == SERVICE_POLICY else [policy],
            "period": period,
            "display_name": display_name,
        },
        operation="create-service-token",
    )
    token = ((body or {}).get("auth") or {}).get("client_token")
    if not token:
        raise VaultLayoutError("auth/token/create-orphan", "no token in the answer")
    return str(token)


def write_rendered_policies(directory: Path, mounts: Mounts | None = None) -> list[Path]:
    """Write every rendered policy as ``<name>.hcl`` under ``directory`` (deploy/openbao/)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in policy_documents(mounts).items():
        target = directory / f"{name}.hcl"
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


if __name__ == "__main__":  # python -m custody.vault.layout deploy/openbao/policies
    for written_path in write_rendered_policies(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        sys.stdout.write(f"{written_path}\n")
