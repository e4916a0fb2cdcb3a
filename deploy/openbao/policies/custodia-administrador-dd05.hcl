# custodia-administrador-dd05 — attached to the identity group
# "dd05-administracion", whose only member is the account administrator (enlace)
# currently designated for DD05 (5.VII, 6.IX). Group membership IS the access: when the
# titular designates someone else the membership is replaced and the outgoing person's existing
# tokens lose these paths on their very next request (6.X).
# Rendered by custody.vault.layout from one template for each of DD01 … DD33.
#
# A complete ledger (issue 16, finding 2): this policy grants NOTHING on a secret. It grants
# marker paths under "custodia-acceso/" that hold nothing (no engine is mounted there). The service
# asks OpenBao, with the caller's own token, for the caller's capabilities on the marker of the
# operation and account (sys/capabilities-self); only when OpenBao answers "read" does the
# service make the read itself, wrapped, record it in the ledger and hand over the wrapping
# token. Designation is still access, decided by OpenBao; a person's token reads no secret.

# Reveal the current credential of this district's accounts (revelar). Never the staged ones.
path "custodia-acceso/DD05/revelar/*" {
  capabilities = ["read"]
}

# A 2FA code of this district's accounts (codigo).
path "custodia-acceso/DD05/codigo/*" {
  capabilities = ["read"]
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

