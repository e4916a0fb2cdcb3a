# custodia-secretaria — attached to the identity group "secretaria".
# The Secretaría Ejecutiva is notified of incidents and reviews the ledger (8.C, 9.XVIII), and
# never reads a credential, a staged credential, a 2FA code or a seed (6.IX). The explicit deny
# wins over any grant from another group on the same path (see the end of this file).
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

# OpenBao takes, for a request, the MOST SPECIFIC matching path of all the token's policies
# together: a deny on "custodia/*" does not beat a grant on "custodia/data/cuentas/DD05/*". So the
# deny is repeated on every path that a coadministrator or district policy grants on these
# mounts (rendered by custody.layout; a unit test keeps the list complete, an integration test
# proves each one against OpenBao).
path "custodia-totp/code/*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD01-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD02-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD03-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD04-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD05-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD06-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD07-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD08-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD09-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD10-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD11-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD12-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD13-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD14-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD15-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD16-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD17-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD18-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD19-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD20-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD21-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD22-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD23-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD24-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD25-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD26-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD27-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD28-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD29-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD30-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD31-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD32-*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/DD33-*" {
  capabilities = ["deny"]
}

path "custodia-totp/keys/*" {
  capabilities = ["deny"]
}

path "custodia-transit/encrypt/custodia-solicitudes" {
  capabilities = ["deny"]
}

path "custodia-transit/hmac/custodia-fingerprint" {
  capabilities = ["deny"]
}

path "custodia-transit/hmac/custodia-fingerprint/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD01/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD02/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD03/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD04/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD05/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD06/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD07/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD08/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD09/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD10/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD11/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD12/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD13/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD14/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD15/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD16/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD17/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD18/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD19/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD20/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD21/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD22/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD23/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD24/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD25/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD26/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD27/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD28/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD29/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD30/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD31/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD32/*" {
  capabilities = ["deny"]
}

path "custodia/data/cuentas/DD33/*" {
  capabilities = ["deny"]
}

path "custodia/data/preparadas/*" {
  capabilities = ["deny"]
}

path "custodia/metadata/cuentas/*" {
  capabilities = ["deny"]
}

path "custodia/metadata/preparadas/*" {
  capabilities = ["deny"]
}

