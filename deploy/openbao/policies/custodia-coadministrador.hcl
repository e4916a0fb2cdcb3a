# custodia-coadministrador — attached to the identity group "coadministradores".
# UTCSyD coadministrators (6.VI, 6.IX): reveal every district's credentials, stage, confirm and
# abandon rotations (6.X), register 2FA seeds — each through the service, which records it.
# Nobody can read a seed back: the TOTP engine never returns an imported seed.
# Rendered by custody.vault.layout from this template: custodia, custodia-totp, custodia-transit are mount paths.

# A complete ledger (issue 16, finding 2): this policy grants NOTHING on a secret (current or
# staged credentials, older versions, 2FA keys and codes, fingerprints). It grants marker paths
# under "custodia-acceso/" that hold nothing (no engine is mounted there), one per operation; the
# service asks OpenBao with the caller's own token for the caller's capabilities on the marker
# (sys/capabilities-self) and, only when OpenBao answers "read", does the operation itself and
# records it in the ledger. A coadministrator's token read every district before this.

# Reveal any district's current credential (revelar) and 2FA code (codigo).
path "custodia-acceso/+/revelar/*" {
  capabilities = ["read"]
}

path "custodia-acceso/+/codigo/*" {
  capabilities = ["read"]
}

# Stage, confirm and abandon rotations (6.X); import 2FA seeds (never read back).
path "custodia-acceso/+/preparar/*" {
  capabilities = ["read"]
}

path "custodia-acceso/+/confirmar/*" {
  capabilities = ["read"]
}

path "custodia-acceso/+/abandonar/*" {
  capabilities = ["read"]
}

path "custodia-acceso/+/semilla/*" {
  capabilities = ["read"]
}

# Destroy a closed account's password (every version) and 2FA seed (10, cuentas baja).
path "custodia-acceso/+/destruir/*" {
  capabilities = ["read"]
}

# Password arguments of requests (issue 16, finding 4): sealed with the coadministrator's own
# token before they cross NATS (personas alta); only the service's token opens them.
path "custodia-transit/encrypt/custodia-solicitudes" {
  capabilities = ["update"]
}

# The ledger's anchored head and witnesses (issue 16): read them to verify the ledger
# («custodia bitacora verificar»); nobody but the follower's token writes there.
path "custodia/data/bitacora/*" {
  capabilities = ["read"]
}

path "custodia/metadata/bitacora/*" {
  capabilities = ["read", "list"]
}

# Role groups (finding 5 of issue 16): adding or removing a coadministrator, titular or secretaria
# is written with a coadministrator's own token, never the service's, so the service token alone
# cannot make anyone a coadministrator. Members only: never the groups' policies.
path "identity/group/name/coadministradores" {
  capabilities = ["read", "update"]
  allowed_parameters = {
    "member_entity_ids" = []
  }
}

path "identity/group/name/titulares" {
  capabilities = ["read", "update"]
  allowed_parameters = {
    "member_entity_ids" = []
  }
}

path "identity/group/name/secretaria" {
  capabilities = ["read", "update"]
  allowed_parameters = {
    "member_entity_ids" = []
  }
}

# The second factor (issue 18): who must use it is written with a coadministrator's own token,
# like the role groups (members only). Destroying a lost factor (a recorded reset) is granted by
# the policy custodia-segundo-factor-restablecer (written once by custodia init: it pins
# Custodia's TOTP method, whose id OpenBao chooses). No coadministrator writes any ACL policy.
path "identity/group/name/custodia-segundo-factor" {
  capabilities = ["read", "update"]
  allowed_parameters = {
    "member_entity_ids" = []
  }
}

# Root token generation (issue 16, finding 6): ``custodia init`` revokes OpenBao's root token; an
# operator who needs one again combines a coadministrator's token (this path) with the unseal
# key (``bao operator generate-root``). Neither alone is enough; every use is audited.
path "sys/generate-root-token/*" {
  capabilities = ["create", "read", "update", "delete"]
}

# A departure (issue 18, 6.X): the leaver's identity is disabled with the coadministrator's own
# token, which refuses every token of theirs and their login from the next request. Only
# ``disabled = true``: a coadministrator can neither enable an identity again nor change
# anything else about it (policies, aliases, name).
path "identity/entity/id/*" {
  capabilities = ["update"]
  allowed_parameters = {
    "disabled" = [true]
  }
}

# Never a secret with this token, whatever another policy grants on the same patterns.
path "custodia/data/cuentas/*" {
  capabilities = ["deny"]
}

path "custodia/metadata/cuentas/*" {
  capabilities = ["deny"]
}

path "custodia/delete/cuentas/*" {
  capabilities = ["deny"]
}

path "custodia/undelete/cuentas/*" {
  capabilities = ["deny"]
}

path "custodia/destroy/cuentas/*" {
  capabilities = ["deny"]
}

path "custodia/data/preparadas/*" {
  capabilities = ["deny"]
}

path "custodia/metadata/preparadas/*" {
  capabilities = ["deny"]
}

path "custodia/delete/preparadas/*" {
  capabilities = ["deny"]
}

path "custodia/undelete/preparadas/*" {
  capabilities = ["deny"]
}

path "custodia/destroy/preparadas/*" {
  capabilities = ["deny"]
}

path "custodia-totp/keys/*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/*" {
  capabilities = ["deny"]
}

path "custodia-transit/hmac/custodia-fingerprint" {
  capabilities = ["deny"]
}

path "custodia-transit/hmac/custodia-fingerprint/*" {
  capabilities = ["deny"]
}

