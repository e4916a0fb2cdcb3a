"""Custodia's outer layer: the application's use cases and every adapter, in rooms by role.

- :mod:`custody.app`: the use cases by area (people, designations, accounts, credentials, change
  requests, incidents, reconciliation, the institution's controls), put together by
  :class:`custody.app.custodia.Custodia` over one ledger helper (:mod:`custody.app.ledger`).
- :mod:`custody.vault`: the OpenBao (Vault API) adapter — client, transport, layout and
  policies, people's sessions, credentials and 2FA, personal data, the audit-device follower.
- :mod:`custody.service`: the NATS command wire — protocol, client, the command service
  (``custodia servicio``) and its command table, NATS permissions, the auth callout.
- :mod:`custody.ledger`: the ledger follower, its signer and the anchored head.
- :mod:`custody.stack`: processes and servers — embedded NATS and OpenBao, the cluster harness
  and deploy renderers, the read side, the e-mail notices' sender.
- :mod:`custody.config` (every ``CUSTODIA_*`` setting), :mod:`custody.bootstrap` (where the
  servers are, with which credentials), :mod:`custody.runner` (the composition root: builds the
  application and its adapters for ``init``, the service and the read side), and
  :mod:`custody.errors`.

Arrows point inward: ``cli`` → ``custody`` → ``projections`` → ``events``
(``tests/unit/test_architecture.py`` keeps them so).
"""
