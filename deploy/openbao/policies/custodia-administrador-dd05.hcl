# custodia-administrador-dd05 — attached to the identity group
# "dd05-administracion", whose only member is the account administrator (enlace)
# currently designated for DD05 (5.VII, 6.IX). Group membership IS the access: when the
# titular designates someone else the membership is replaced and the outgoing person's existing
# tokens lose these paths on their very next request (6.X).
# Rendered by custody.layout from one template for each of DD01 … DD33.

# Current credentials of this district only (revelar). Never the staged ones.
path "custodia/data/cuentas/DD05/*" {
  capabilities = ["read"]
}

# 2FA codes of this district's accounts (key names are "DD05-<platform>").
path "custodia-totp/code/DD05-*" {
  capabilities = ["read"]
}
