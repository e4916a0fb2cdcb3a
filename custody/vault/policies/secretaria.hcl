# custodia-secretaria — attached to the identity group "secretaria".
# The Secretaría Ejecutiva is notified of incidents and reviews the ledger (8.C, 9.XVIII), and
# never reads a credential, a staged credential, a 2FA code or a seed (6.IX). The explicit deny
# wins over any grant from another group on the same path (see the end of this file).
# Rendered by custody.vault.layout from this template: ${kv}, ${totp}, ${transit} are mount paths.

path "${kv}/*" {
  capabilities = ["deny"]
}

path "${totp}/*" {
  capabilities = ["deny"]
}

path "${transit}/*" {
  capabilities = ["deny"]
}

# The service's authorization markers (issue 16, finding 2): the service acts for a person only
# when OpenBao grants that person's token "read" on one of them.
path "${access}/*" {
  capabilities = ["deny"]
}

# The ledger's anchored head and witnesses (issue 16): read them to verify the ledger
# («custodia bitacora verificar»); nobody but the follower's token writes there.
path "${kv}/data/bitacora/*" {
  capabilities = ["read"]
}

path "${kv}/metadata/bitacora/*" {
  capabilities = ["read", "list"]
}

# OpenBao takes, for a request, the MOST SPECIFIC matching path of all the token's policies
# together: a deny on "${kv}/*" does not beat a grant on "${kv}/data/cuentas/DD05/*". So the
# deny is repeated on every path that a coadministrator or district policy grants on these
# mounts and markers (rendered by custody.vault.layout; a unit test keeps the list complete, an
# integration test proves each one against OpenBao).
${secret_denies}
