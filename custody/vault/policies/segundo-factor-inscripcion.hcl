# custodia-segundo-factor-inscripcion — written once by ``custodia init`` with the administrative token, after
# OpenBao made Custodia's TOTP login method (its id, ${method_id}, is chosen by OpenBao, so this
# policy is rendered then: custody.vault.layout.second_factor_policies). Held by custodia-servicio's token (attached at its creation):
# enrols a person's factor at their first login (custody.app.second_factor.enrol). Only this method: any other method_id is refused by OpenBao.
path "identity/mfa/method/totp/admin-generate" {
  capabilities = ["update"]
  allowed_parameters = {
    "method_id" = ["${method_id}"]
    "entity_id" = []
  }
}
