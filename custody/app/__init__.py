"""The application's use cases, by area, over one ledger helper (:mod:`.ledger`: the ``custodia``
eventsourcing application; load, lock, save, index). :class:`.custodia.Custodia` puts the areas
together: people and leavers, designations (designation is access: :mod:`.holders`, :mod:`.access`),
accounts, credentials, change requests, incidents, reconciliation; the institution's controls,
the second factor, the password policy and the ledger status the service reports."""
