"""The application's use cases: the ``custodia`` eventsourcing application (:mod:`.custodia`),
designation as
access, incidents, reconciliation, the password policy and the ledger status the service reports."""
