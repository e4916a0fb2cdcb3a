"""The security tests reuse the e2e service world: ``custodia servicio`` on the embedded NATS
and OpenBao of a fresh home, with DD05 staffed (see tests/e2e/conftest.py)."""

from tests.e2e.conftest import service_world  # noqa: F401  # the fixture, for this directory
