# custodia-servicio — the token of "custodia servicio", the command service (issue 6).
# Least privilege: it creates new logins, changes the MEMBERSHIP of the 33 district groups only,
# reads versions and metadata, seals personal data, and makes the secret operations of people
# (issue 16, finding 2) — only after OpenBao said yes to the caller: custody.vault.credentials asks
# OpenBao, with the caller's own token, for the caller's capability on the operation's marker
# path (sys/capabilities-self on ${access}/<district>/<operation>/<platform>), and only then
# reads, stages or confirms with this token. People's own tokens read no secret at all.
# A current credential and a 2FA code can be read only WRAPPED (min_wrapping_ttl): this token
# never sees one in clear; the single-use wrapping token goes to the caller after the ledger
# recorded the read, or is revoked (fail closed).
# It cannot change which policies a group or an entity carries, nor give a login any policy.
# Rendered by custody.vault.layout from this template: ${kv}, ${totp}, ${transit}, ${userpass};
# district_groups (below) is one block per district group.

# Never a secret value except the paths below (explicit deny: the more specific grants below
# are the only exceptions; the ledger's head and witnesses stay the follower's).
path "${kv}/data/*" {
  capabilities = ["deny"]
}

# Current credentials: read only wrapped (reveal), written at a confirmation (check-and-set;
# the write is wrapped too: its answer is the version's metadata, nothing secret).
path "${kv}/data/cuentas/*" {
  capabilities = ["create", "read", "update"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = "300s"
}

# Staged credentials: the service generates the new password itself (rotar iniciar), writes it
# with check-and-set 0, reads it back at the confirmation to make it current.
path "${kv}/data/preparadas/*" {
  capabilities = ["create", "read", "update"]
}

# 2FA codes: read only wrapped, like a credential.
path "${totp}/code/*" {
  capabilities = ["read"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = "300s"
}

# 2FA seeds: imported (write-only), key parameters read (period, digits). Generating a key is
# refused, so no seed ever comes back in an answer; an imported seed is never returned.
# Deleted when the account is closed (10), after the ledger recorded the closure.
path "${totp}/keys/*" {
  capabilities = ["create", "read", "update", "delete"]
  denied_parameters = {
    "generate" = []
  }
}

# Keyed fingerprints of staged passwords and seeds for the ledger (never the secret itself).
path "${transit}/hmac/custodia-fingerprint" {
  capabilities = ["update"]
}

path "${transit}/hmac/custodia-fingerprint/*" {
  capabilities = ["update"]
}

# The ledger follower's alerts (it refused to sign a rewritten history): read-only, so the
# service records each as an incident (custody.ledger.alerts). Nothing secret is there.
path "${kv}/data/bitacora/alertas/*" {
  capabilities = ["read"]
}

path "${kv}/data/bitacora/+/alertas/*" {
  capabilities = ["read"]
}

path "${kv}/metadata/bitacora/alertas/*" {
  capabilities = ["list"]
}

path "${kv}/metadata/bitacora/+/alertas/*" {
  capabilities = ["list"]
}

# Versions and custom_metadata (ledger event ids, fingerprints) for reveals and reconciliation.
path "${kv}/metadata/*" {
  capabilities = ["read", "list"]
}

# A confirmation tags the new current version with its rotation (custom_metadata; "create"
# for an account's first credential). "delete" destroys every version and the metadata of a
# closed account's credential (10), after the ledger recorded the closure.
path "${kv}/metadata/cuentas/*" {
  capabilities = ["create", "read", "list", "update", "delete"]
}

# Staged credentials' tags (the rotation id), written at staging; reconciliation removes staged
# leftovers, or puts back the tag of the ledger's open rotation (``staged_untagged``);
# erasure tombstones (9.IV).
path "${kv}/metadata/preparadas/*" {
  capabilities = ["create", "read", "list", "update", "delete"]
}

path "${kv}/metadata/pii-borrados/*" {
  capabilities = ["create", "read", "update"]
}

# People (finding 5 of issue 16: the service token must not be a coadministrator in disguise).
# A NEW login only: "create" without "update" means an existing login cannot be changed (no
# password reset: users/<name>/password is an update), nor deleted and created again; only a
# password can be given, and one token policy, required and pinned: ${own_password}, with which
# the person changes that password (custodia sesion contrasena). Never another policy or setting.
path "auth/${userpass}/users/+" {
  capabilities = ["create"]
  required_parameters = ["password", "token_policies"]
  allowed_parameters = {
    "password"       = []
    "token_policies" = ["${own_password}"]
  }
}

path "sys/auth" {
  capabilities = ["read"]
}

# Issue 18, the second factor. A first-login user (enrolment only) is created with a password
# and no policy at all, not even ``default`` (token_no_default_policy pinned to true; any other
# parameter, e.g. token_policies or policies, is refused by OpenBao), and deleted once the
# person enrolled. Its token can do nothing in OpenBao; the service looks it up (auth/token/lookup)
# and, for that token's own user only, generates the factor with admin-generate, granted by
# custodia-segundo-factor-inscripcion (written once by custodia init, pinned to Custodia's
# method). This token writes no ACL policy and cannot destroy a factor.
path "auth/${first_login}/users/+" {
  capabilities = ["create", "delete"]
  allowed_parameters = {
    "password"                = []
    "token_no_default_policy" = [true]
  }
}

# Whether a person still has a first login (enrolment not confirmed yet).
path "auth/${first_login}/users" {
  capabilities = ["list"]
}

# Who presents a token to the service (a first login's token may not look itself up).
path "auth/token/lookup" {
  capabilities = ["update"]
}

# Whether the factor is enforced, and on which method (custody.app.second_factor).
path "identity/mfa/login-enforcement/${mfa_enforcement}" {
  capabilities = ["read"]
}

# A login's alias is created WITHOUT canonical_id, so OpenBao makes a new entity for it: the
# service cannot attach a login to an existing person's entity (and inherit their groups), nor
# move an alias (no update or delete on entity-alias/id/*). People are found by their login's
# alias; the entity's name is cosmetic (set once, to the user name).
path "identity/entity-alias" {
  capabilities = ["create", "update"]
  allowed_parameters = {
    "name"           = []
    "mount_accessor" = []
  }
}

path "identity/entity-alias/id/*" {
  capabilities = ["read"]
}

path "identity/entity/id" {
  capabilities = ["list"]
}

# Name and metadata only: never policies, never aliases, never "disabled".
path "identity/entity/id/*" {
  capabilities = ["read", "update"]
  allowed_parameters = {
    "name"     = []
    "metadata" = []
  }
}

path "identity/entity/name/*" {
  capabilities = ["read"]
}

path "identity/lookup/entity" {
  capabilities = ["update"]
}

# Designation is access: the service replaces the members of the 33 district administrator
# groups, and nothing else about them. One exact path per group ("*" is a glob only at the end
# of a path, and "update" on a group name that does not exist would create that group).
${district_groups}
# Role groups: never through the service. Adding or removing a coadministrator, titular or
# secretaria is written with the requesting coadministrator's own token (custody.app.access).
path "identity/group/name/coadministradores" {
  capabilities = ["deny"]
}

path "identity/group/name/titulares" {
  capabilities = ["deny"]
}

path "identity/group/name/secretaria" {
  capabilities = ["deny"]
}

path "identity/group/name/${mfa_group}" {
  capabilities = ["deny"]
}

path "identity/group/id/*" {
  capabilities = ["read"]
}

path "identity/group/name" {
  capabilities = ["list"]
}

# Fail closed (6.XII, 8.D): revoke a wrapping token whose read could not be recorded in the ledger.
path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}

# The ledger's public key (verification). Signing is the follower's own token's (custodia-firmante).
path "${transit}/verify/custodia-ledger" {
  capabilities = ["update"]
}

path "${transit}/verify/custodia-ledger/*" {
  capabilities = ["update"]
}

path "${transit}/keys/custodia-ledger" {
  capabilities = ["read"]
}

# Personal data (9.IV): one key per person, deletable, so erasing the key erases the data.
path "${transit}/keys/pii-*" {
  capabilities = ["create", "read", "update", "delete"]
}

path "${transit}/encrypt/pii-*" {
  capabilities = ["update"]
}

path "${transit}/decrypt/pii-*" {
  capabilities = ["update"]
}

# Password arguments of requests (issue 16, finding 4): opened, never sealed, by the service.
path "${transit}/decrypt/custodia-solicitudes" {
  capabilities = ["update"]
}
