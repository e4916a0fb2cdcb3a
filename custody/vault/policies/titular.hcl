# custodia-titular — attached to the identity group "titulares".
# A titular designates the district's account administrator and answers for compliance, but never
# reads a credential, a staged credential, a 2FA code or a seed (6.IX). The explicit deny wins over
# any grant from another group on the same path (see the end of this file), so a titular added by
# mistake to a district group still reads nothing (separation of duties: whoever designates
# cannot be the one designated).
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

# OpenBao takes, for a request, the MOST SPECIFIC matching path of all the token's policies
# together: a deny on "${kv}/*" does not beat a grant on "${kv}/data/cuentas/DD05/*". So the
# deny is repeated on every path that a coadministrator or district policy grants on these
# mounts and markers (rendered by custody.vault.layout; a unit test keeps the list complete, an
# integration test proves each one against OpenBao).
${secret_denies}
