"""Custodia's domain model and its JetStream persistence module.

Knows nothing of Vault, the command line or reports: dependencies point inward, to here.
"""
