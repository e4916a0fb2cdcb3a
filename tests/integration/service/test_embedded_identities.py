"""The embedded stack's NATS identities: one 0600 file each, no shared client credential, the
former single file split, and the administrative password not read when nothing changed."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from custody.service import permissions as nats_auth
from custody.stack.embedded import EmbeddedStack

pytestmark = pytest.mark.integration


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_one_file_per_identity_and_the_former_file_split(tmp_path: Path) -> None:
    """A home from before (every password in ``nats-users.json``, ``cliente`` among them) is
    split into one 0600 file per identity keeping the passwords; the single file and the
    shared client credential are gone; the server's configuration has no ``cliente``."""
    home = tmp_path / "home"
    (home / "secrets").mkdir(parents=True)
    old = {name: f"clave-{name}" for name in ("servicio", "cliente", "verificador")}
    (home / "secrets" / "nats-users.json").write_text(json.dumps(old))
    stack = EmbeddedStack(home)
    stack._prepare_home()
    secrets = home / "secrets"
    assert not (secrets / "nats-users.json").exists()
    assert not (secrets / "nats-cliente.json").exists()
    for name in nats_auth.USERS:
        assert _mode(stack.nats_user_file(name)) == 0o600
    assert _mode(stack.callout_seed_file) == 0o600
    assert stack.nats_user("servicio").password == "clave-servicio"
    assert stack.nats_user("verificador").password == "clave-verificador"
    conf = (home / "nats" / "auth.conf").read_text()
    assert '"cliente"' not in conf
    assert "auth_callout" in conf


def test_the_administrative_password_is_not_read_when_nothing_changed(tmp_path: Path) -> None:
    """Once the server's configuration is written, starting again (``custodia servicio`` does)
    reads no password file: an unreadable administrator file does not stop it, and the
    configuration keeps the real password."""
    stack = EmbeddedStack(tmp_path / "home")
    stack._prepare_home()
    conf = (tmp_path / "home" / "nats" / "auth.conf").read_text()
    admin_file = stack.nats_user_file("administrador")
    real = admin_file.read_text()
    admin_file.write_text("no es json")
    stack._prepare_home()
    assert (tmp_path / "home" / "nats" / "auth.conf").read_text() == conf
    admin_file.write_text(real)


def test_the_home_is_its_owners_alone(tmp_path: Path) -> None:
    """Besides ``secrets/``, the home holds the projections (incident details, who read which
    account when) and the logs: a home Custodia creates, and every folder in it, is 0700 (no
    other local user may list or read it), and an existing home of the same owner is closed
    to others when it is prepared."""
    home = tmp_path / "nueva" / ".local" / "share" / "custodia"
    stack = EmbeddedStack(home)
    stack._prepare_home()
    for folder in (home, stack.run_dir, stack.nats_dir, stack.bao_dir, stack.secrets_dir):
        assert _mode(folder) == 0o700, folder
    open_home = tmp_path / "abierta"
    open_home.mkdir(mode=0o755)
    open_home.chmod(0o755)
    EmbeddedStack(open_home)._prepare_home()
    assert _mode(open_home) == 0o700
