# custodia-segundo-factor-restablecer — written once by ``custodia init`` with the administrative token, after
# OpenBao made Custodia's TOTP login method (its id, ${method_id}, is chosen by OpenBao, so this
# policy is rendered then: custody.vault.layout.second_factor_policies). Held by the coadministradores group:
# destroys a lost factor at a recorded reset (personas restablecer-factor). Only this method: any other method_id is refused by OpenBao.
path "identity/mfa/method/totp/admin-destroy" {
  capabilities = ["update"]
  allowed_parameters = {
    "method_id" = ["${method_id}"]
    "entity_id" = []
  }
}
