# custodia-titular — attached to the identity group "titulares".
# A titular designates the district's account administrator and answers for compliance, but never
# reads a credential, a staged credential, a 2FA code or a seed (6.IX). The explicit deny wins over
# any grant from another group, so a titular added by mistake to a district group still reads
# nothing (separation of duties: whoever designates cannot be the one designated).
# Rendered by custody.layout from this template: ${kv}, ${totp}, ${transit} are mount paths.

path "${kv}/*" {
  capabilities = ["deny"]
}

path "${totp}/*" {
  capabilities = ["deny"]
}

path "${transit}/*" {
  capabilities = ["deny"]
}
