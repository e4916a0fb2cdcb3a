# custodia-secretaria — attached to the identity group "secretaria".
# The Secretaría Ejecutiva is notified of incidents and reviews the ledger (8.C, 9.XVIII), and
# never reads a credential, a staged credential, a 2FA code or a seed (6.IX). The explicit deny
# wins over any grant from another group on the same path (see the end of this file).
# Rendered by custody.vault.layout from this template: custodia, custodia-totp, custodia-transit are mount paths.

path "custodia/*" {
  capabilities = ["deny"]
}

path "custodia-totp/*" {
  capabilities = ["deny"]
}

path "custodia-transit/*" {
  capabilities = ["deny"]
}

# The service's authorization markers (issue 16, finding 2): the service acts for a person only
# when OpenBao grants that person's token "read" on one of them.
path "custodia-acceso/*" {
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
# mounts and markers (rendered by custody.vault.layout; a unit test keeps the list complete, an
# integration test proves each one against OpenBao).
path "custodia-acceso/+/abandonar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/+/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/+/confirmar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/+/destruir/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/+/preparar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/+/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/+/semilla/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD01/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD01/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD02/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD02/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD03/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD03/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD04/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD04/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD05/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD05/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD06/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD06/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD07/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD07/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD08/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD08/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD09/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD09/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD10/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD10/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD11/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD11/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD12/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD12/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD13/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD13/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD14/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD14/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD15/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD15/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD16/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD16/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD17/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD17/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD18/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD18/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD19/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD19/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD20/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD20/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD21/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD21/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD22/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD22/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD23/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD23/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD24/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD24/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD25/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD25/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD26/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD26/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD27/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD27/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD28/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD28/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD29/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD29/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD30/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD30/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD31/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD31/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD32/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD32/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD33/codigo/*" {
  capabilities = ["deny"]
}

path "custodia-acceso/DD33/revelar/*" {
  capabilities = ["deny"]
}

path "custodia-totp/code/*" {
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

path "custodia/data/preparadas/*" {
  capabilities = ["deny"]
}

path "custodia/delete/cuentas/*" {
  capabilities = ["deny"]
}

path "custodia/delete/preparadas/*" {
  capabilities = ["deny"]
}

path "custodia/destroy/cuentas/*" {
  capabilities = ["deny"]
}

path "custodia/destroy/preparadas/*" {
  capabilities = ["deny"]
}

path "custodia/metadata/cuentas/*" {
  capabilities = ["deny"]
}

path "custodia/metadata/preparadas/*" {
  capabilities = ["deny"]
}

path "custodia/undelete/cuentas/*" {
  capabilities = ["deny"]
}

path "custodia/undelete/preparadas/*" {
  capabilities = ["deny"]
}

