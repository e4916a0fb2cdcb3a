# custodia-primer-ingreso-<person> — the ONLY policy of one person's first-login user (issue 18,
# the second factor). That login (auth/${first_login}/) belongs to a throwaway entity of its own:
# no group, no marker, nothing secret. It may enrol the TOTP login factor of exactly one
# person (entity ${entity_id}) on exactly Custodia's method, once: OpenBao answers a second
# admin-generate with nothing (the secret is not rotated). The service deletes this policy and
# the login when the person confirms the enrolment with a first code.
# Written with a coadministrator's own token (custodia init: the administrative one); rendered
# by custody.vault.layout.first_login_policy.
path "identity/mfa/method/totp/admin-generate" {
  capabilities = ["update"]
  allowed_parameters = {
    "method_id" = ["${method_id}"]
    "entity_id" = ["${entity_id}"]
  }
}
