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
