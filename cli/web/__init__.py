"""The web view (``custodia web``): read-only pages for the Secretaría Ejecutiva, titulares and
auditors, plus the Secretaría Ejecutiva's acknowledgement of an incident.

It is a client of ``custodia servicio`` like the command line: each page is one command sent
with the person's own OpenBao login (:mod:`cli.web.backend`), so the service decides the scope and
records what it records; the web process holds no ledger or OpenBao access of its own. There is
no reveal on the web: no page shows a credential, a 2FA code or a seed.
"""
