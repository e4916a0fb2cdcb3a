"""The OpenBao (Vault API) adapter: the client and its transport, the layout and policies, people's
sessions, credentials and 2FA, personal data, sealed arguments and the audit-device follower."""
