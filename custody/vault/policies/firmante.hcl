# custodia-firmante — the token of the ledger follower (custody.ledger.follower), and only it:
# it signs checkpoints with the ledger key, moves the head anchored outside NATS (KV v2,
# check-and-set) and stores each checkpoint once as a witness it can never rewrite nor delete
# (issue 16, findings 3 and 8). The service's own token cannot sign.
# Rendered by custody.vault.layout from this template: ${kv}, ${totp}, ${transit}, ${userpass}.

# The ledger's signing key: ed25519, its private part never leaves the server (6.XII, 11.8).
path "${transit}/sign/custodia-ledger" {
  capabilities = ["update"]
}

path "${transit}/sign/custodia-ledger/*" {
  capabilities = ["update"]
}

path "${transit}/keys/custodia-ledger" {
  capabilities = ["read"]
}

# The anchored tree head: every write carries check-and-set (the mount has cas_required).
path "${kv}/data/bitacora/cabeza" {
  capabilities = ["create", "read", "update"]
}

path "${kv}/data/bitacora/+/cabeza" {
  capabilities = ["create", "read", "update"]
}

# Witnesses: create, never update; nothing grants delete, destroy or metadata changes.
path "${kv}/data/bitacora/testigos/*" {
  capabilities = ["create", "read"]
}

path "${kv}/data/bitacora/+/testigos/*" {
  capabilities = ["create", "read"]
}

# Alerts: why the follower refused to sign (a rewritten history); create-only too.
path "${kv}/data/bitacora/alertas/*" {
  capabilities = ["create"]
}

path "${kv}/data/bitacora/+/alertas/*" {
  capabilities = ["create"]
}
