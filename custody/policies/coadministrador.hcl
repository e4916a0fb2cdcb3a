# custodia-coadministrador — attached to the identity group "coadministradores".
# UTCSyD coadministrators (6.VI, 6.IX): read every district's credentials, stage, confirm and
# abandon rotations (6.X), register 2FA seeds. They can never read a seed back: no capability
# below allows reading ${totp}/keys/*, and the TOTP engine never returns an imported seed.
# Rendered by custody.layout from this template: ${kv}, ${totp}, ${transit} are mount paths.

# Current credentials: read (revelar) and write a new version at confirmation (check-and-set).
path "${kv}/data/cuentas/*" {
  capabilities = ["create", "read", "update"]
}

# Versions and provenance (custom_metadata: ledger event, fingerprint), listing, account closure.
path "${kv}/metadata/cuentas/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# Staged (pending) credentials: only coadministrators ever see them (6.IX, 6.X).
path "${kv}/data/preparadas/*" {
  capabilities = ["create", "read", "update"]
}

path "${kv}/metadata/preparadas/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# 2FA: import a seed (write-only) and get codes. Generating a key is refused, so no seed can
# ever come back in a response, not even the coadministrator's own.
path "${totp}/keys/*" {
  capabilities = ["create", "update", "delete"]
  denied_parameters = {
    "generate" = []
  }
}

path "${totp}/code/*" {
  capabilities = ["read"]
}

# Keyed fingerprints of staged passwords and seeds for the ledger (never the secret itself).
path "${transit}/hmac/custodia-fingerprint" {
  capabilities = ["update"]
}

path "${transit}/hmac/custodia-fingerprint/*" {
  capabilities = ["update"]
}

# Password arguments of requests (issue 16, finding 4): sealed with the coadministrator's own
# token before they cross NATS (personas alta); only the service's token opens them.
path "${transit}/encrypt/custodia-solicitudes" {
  capabilities = ["update"]
}

# The ledger's anchored head and witnesses (issue 16): read them to verify the ledger
# («custodia bitacora verificar»); nobody but the follower's token writes there.
path "${kv}/data/bitacora/*" {
  capabilities = ["read"]
}

path "${kv}/metadata/bitacora/*" {
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

# Root token generation (issue 16, finding 6): ``custodia init`` revokes OpenBao's root token; an
# operator who needs one again combines a coadministrator's token (this path) with the unseal
# key (``bao operator generate-root``). Neither alone is enough; every use is audited.
path "sys/generate-root-token/*" {
  capabilities = ["create", "read", "update", "delete"]
}

# A departure (issue 18, R2): the leaver's identity is disabled with the coadministrator's own
# token, which refuses every token of theirs and their login from the next request. Only
# ``disabled = true``: a coadministrator can neither enable an identity again nor change
# anything else about it (policies, aliases, name).
path "identity/entity/id/*" {
  capabilities = ["update"]
  allowed_parameters = {
    "disabled" = [true]
  }
}
