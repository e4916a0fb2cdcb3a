# custodia-contrasena-propia — written by ``custodia init`` with the administrative token, once the
# userpass mount exists (its accessor, ${accessor}, is chosen by OpenBao, so this policy is rendered
# then: custody.vault.layout.own_password_policy). A token policy of every userpass login (the
# service creates each login with exactly this policy), so only a login's own token has it: not an
# identity group's policy, which would reach every token of the person. The request tokens of the
# role custodia-solicitud may not carry it (disallowed_policies): the service never holds it.
#
# A person changes their own password (custodia sesion contrasena) and nobody else's: the path is
# the login's own name, as OpenBao knows it from the token. A coadministrator who gave the initial
# password no longer knows the password once it is changed.
path "auth/${userpass}/users/{{identity.entity.aliases.${accessor}.name}}/password" {
  capabilities = ["update"]
  allowed_parameters = {
    "password" = []
  }
}

# The session a login keeps (custody.vault.session.session_token): a child made through the role
# custodia-sesion, which refuses this policy, so a session cannot change the password, and
# cannot make another session. Only a login's own token holds this policy.
path "auth/token/create/${session_role}" {
  capabilities = ["update"]
  allowed_parameters = {
    "policies"  = []
    "ttl"       = []
    "renewable" = []
  }
}
