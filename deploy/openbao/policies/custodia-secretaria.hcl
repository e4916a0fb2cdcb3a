# custodia-secretaria — attached to the identity group "secretaria".
# The Secretaría Ejecutiva is notified of incidents and reviews the ledger (8.C, 9.XVIII), and
# never reads a credential, a staged credential, a 2FA code or a seed (6.IX). The explicit deny
# wins over any grant from another group.
# Rendered by custody.layout from this template: custodia, custodia-totp, custodia-transit are mount paths.

path "custodia/*" {
  capabilities = ["deny"]
}

path "custodia-totp/*" {
  capabilities = ["deny"]
}

path "custodia-transit/*" {
  capabilities = ["deny"]
}

# The ledger's anchored head and witnesses (issue 16): read them to verify the ledger
# («custodia bitacora verificar»); nobody but the follower's token writes there.
path "custodia/data/bitacora/*" {
  capabilities = ["read"]
}

path "custodia/metadata/bitacora/*" {
  capabilities = ["read", "list"]
}
