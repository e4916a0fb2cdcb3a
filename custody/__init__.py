"""Custodia's application services and the Vault (OpenBao) side; the embedded server stack."""
