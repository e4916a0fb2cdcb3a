"""The NATS command wire: the protocol, the client, the command service (:mod:`.server`) and its
command table, the NATS accounts and permissions, and the auth callout that gives each person an
identity."""
