"""The security tests reuse the e2e service world: ``custodia servicio`` on the embedded NATS
and OpenBao of a fresh home, with DD05 staffed (the session fixture ``service_world`` of
tests/conftest.py, the same world the e2e tests use)."""
