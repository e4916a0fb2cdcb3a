# Custodia OpenBao raft member bao-2 (custody.stack.cluster.render_bao_node)
storage "raft" {
  path    = "/var/lib/openbao/raft"
  node_id = "bao-2"
  # 1 = the fastest leader elections (the default, 5, is meant for slow or shared networks).
  performance_multiplier = 1
  retry_join {
    leader_api_addr = "https://bao-1.custodia.internal:8200"
    leader_ca_cert_file = "/etc/openbao/tls/ca.pem"
  }
  retry_join {
    leader_api_addr = "https://bao-2.custodia.internal:8200"
    leader_ca_cert_file = "/etc/openbao/tls/ca.pem"
  }
  retry_join {
    leader_api_addr = "https://bao-3.custodia.internal:8200"
    leader_ca_cert_file = "/etc/openbao/tls/ca.pem"
  }
}

listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  tls_cert_file   = "/etc/openbao/tls/server.pem"
  tls_key_file    = "/etc/openbao/tls/server-key.pem"
  tls_min_version = "tls12"
}

api_addr      = "https://bao-2.custodia.internal:8200"
cluster_addr  = "https://bao-2.custodia.internal:8201"
# Every request is served by the active member (standbys forward): read-after-write holds. By
# default OpenBao >= 2.5 lets standbys answer reads from their own, possibly stale, replica.
disable_standby_reads = true
ui            = false
log_level     = "warn"

# Audit devices cannot be enabled through the API since OpenBao 2.3.2: declared here.
audit "file" "custodia-audit" {
  description = "Custodia audit log"
  options {
    file_path = "/var/log/openbao/audit.log"
    mode      = "0600"
  }
}

# Auto-unseal (recommended in production; see deploy/TOPOLOGY.md): a transit engine on a separate
# OpenBao (or a cloud KMS / PKCS#11 HSM seal) unseals every member at start, without people.
# seal "transit" {
#   address         = "https://bao-unseal.custodia.internal:8200"
#   key_name        = "custodia-autounseal"
#   mount_path      = "transit/"
#   tls_ca_cert     = "/etc/openbao/tls/unseal-ca.pem"
#   # token: the BAO_TOKEN environment variable of the unit (a periodic token, policy limited
#   # to encrypt/decrypt on that key), never in this file.
# }
