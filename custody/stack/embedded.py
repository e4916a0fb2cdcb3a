"""The embedded stack: Custodia's own NATS (JetStream) and OpenBao under ``CUSTODIA_HOME``.

Used when no external servers are configured (``CUSTODIA_NATS_URL``, ``CUSTODIA_VAULT_ADDR``).

Layout of the home::

    run/lock            flock held while starting or stopping (never two supervisors at once)
    run/stack.json      pids and ports of the running servers (rewritten atomically)
    nats/               nats.conf, jetstream/ (file storage, sync_interval: always), nats.log
    openbao/            openbao.hcl, data/ (raft), audit.log (declared audit device), openbao.log
    secrets/            mode 0700; openbao-init.json (the unseal key ONLY), mode 0600;
                        openbao-root-token (mode 0600) only from OpenBao's first start until
                        ``custodia init`` revokes that root token (issue 16, finding 6)

Servers run detached (own session) and outlive the command that started them; ``stop()`` ends
them. ``start()`` is idempotent: a server recorded in ``stack.json`` that is alive, ours and
healthy is reused; a dead one (stale pid file, e.g. after SIGKILL) is started again on its
previous ports when they are free. Whatever a failed ``start()`` started, it stops again.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custody import config as custodia_config
from custody.service import permissions as nats_auth
from custody.stack import servers
from custody.stack.record import (
    ServerRecord,
    StackInfo,
    StackNotRunningError,
    is_ours,
    read_stack,
    running,
    server_record,
)
from custody.stack.secret_files import write_secret, write_secret_json
from custody.stack.servers import (
    BaoProcess,
    NatsConfig,
    NatsProcess,
    free_port,
    http_get_json,
    http_put_json,
    port_is_free,
    terminate,
)
from events.errors import StackError


class ServiceAlreadyRunningError(StackError):
    """Another ``custodia servicio`` runs for this home (``pid``, if it recorded one)."""

    def __init__(self, home: Path, pid: int | None) -> None:
        super().__init__(f"a service already runs for {home} (pid {pid})")
        self.home = home
        self.pid = pid


class HomeNotWritableError(StackError):
    """``CUSTODIA_HOME`` cannot be created or written."""

    def __init__(self, home: Path, reason: str) -> None:
        super().__init__(f"{home}: {reason}")
        self.home = home
        self.reason = reason


class CorruptKeyFileError(StackError):
    """The file holding OpenBao's unseal key is unreadable, malformed or has loose permissions."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UnsealError(StackError):
    """OpenBao refused the unseal key kept in the home (it belongs to another installation)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"OpenBao stayed sealed with the key in {path}")
        self.path = path


class RootTokenGenerationError(StackError):
    """OpenBao did not complete a root token generation with the unseal key of this home."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"root token generation failed: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class VaultKeys:
    """OpenBao's unseal key (``secrets/openbao-init.json``, a file of its own) and, until
    ``custodia init`` revokes it, the initial root token (``secrets/openbao-root-token``)."""

    unseal_key: str
    root_token: str | None = None

    def __repr__(self) -> str:  # never print the secrets
        return "VaultKeys(<redactado>)"


class EmbeddedStack:
    """Supervises the embedded NATS and OpenBao of one ``CUSTODIA_HOME``."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.env = dict(os.environ if env is None else env)
        self.run_dir = home / "run"
        self.nats_dir = home / "nats"
        self.bao_dir = home / "openbao"
        self.secrets_dir = home / "secrets"
        self.stack_file = self.run_dir / "stack.json"
        self.key_file = self.secrets_dir / "openbao-init.json"
        self.root_token_file = self.secrets_dir / "openbao-root-token"

    # -- public API -------------------------------------------------------------------------

    def start(self) -> StackInfo:
        """Start (or reuse) both servers, initialize and unseal OpenBao; return their addresses."""
        self._prepare_home()
        with self._locked():
            record = self._read_stack()
            started: list[int] = []
            try:
                nats = self._ensure_nats(record.get("nats"), started)
                vault = self._ensure_vault(record.get("vault"), started)
                info = StackInfo(self.home, nats, vault)
                self._write_stack(info)
            except BaseException:
                for pid in reversed(started):
                    terminate(pid)
                raise
            return info

    def stop(self) -> bool:
        """Stop both servers cleanly; ``False`` if nothing was running."""
        if not self.run_dir.exists():
            return False
        with self._locked():
            record = self._read_stack()
            stopped = False
            for name in ("service", "vault", "nats"):
                entry = record.get(name)
                if entry and self._is_ours(int(entry["pid"]), name):
                    terminate(int(entry["pid"]), timeout=20)
                    stopped = True
            # stack.json stays: its ports are reused on the next start; dead pids read as stale.
            return stopped

    def info(self) -> StackInfo | None:
        """The recorded servers if both are alive and ours (no health check), else ``None``."""
        return running(self.home)

    def status(self) -> dict[str, Any]:
        """Health and versions of what this home runs, for ``custodia estado``."""
        record = self._read_stack()
        result: dict[str, Any] = {}
        nats = record.get("nats")
        if nats and self._is_ours(int(nats["pid"]), "nats"):
            try:
                code, varz = http_get_json(int(nats["aux_port"]), "/varz")
                hcode, _ = http_get_json(int(nats["aux_port"]), "/healthz?js-enabled-only=true")
            except OSError:
                code, varz, hcode = 0, None, 0
            result["nats"] = {
                "url": f"nats://{servers.LOOPBACK}:{nats['port']}",
                "embebido": True,
                "salud": "ok" if hcode == 200 else "sin_respuesta",
                "version": (varz or {}).get("version"),
                "pid": nats["pid"],
            }
        else:
            result["nats"] = {"url": None, "embebido": True, "salud": "detenido"}
        vault = record.get("vault")
        if vault and self._is_ours(int(vault["pid"]), "vault"):
            try:
                code, health = http_get_json(int(vault["port"]), "/v1/sys/health")
            except OSError:
                code, health = 0, None
            salud = {200: "ok", 503: "sellado", 501: "sin_inicializar"}.get(code, "sin_respuesta")
            result["vault"] = {
                "addr": f"http://{servers.LOOPBACK}:{vault['port']}",
                "embebido": True,
                "salud": salud,
                "version": (health or {}).get("version"),
                "pid": vault["pid"],
            }
        else:
            result["vault"] = {"addr": None, "embebido": True, "salud": "detenido"}
        service = record.get("service")
        result["servicio"] = {
            "activo": bool(service and self._is_ours(int(service["pid"]), "service")),
            "pid": service["pid"] if service else None,
        }
        return result

    def vault_keys(self) -> VaultKeys:
        """The unseal key of the embedded OpenBao (validated) and its root token, if it has
        not been revoked yet. A key file of an earlier version, which also held the root token,
        is split in two files here."""
        path = self.key_file
        try:
            mode = path.stat().st_mode & 0o777
            raw = path.read_text()
        except FileNotFoundError:
            raise CorruptKeyFileError(path, "missing") from None
        except OSError as exc:
            raise CorruptKeyFileError(path, f"unreadable: {exc.strerror}") from None
        if mode & 0o077:
            raise CorruptKeyFileError(path, f"permissions {oct(mode)} are too open (expected 0600)")
        try:
            data = json.loads(raw)
            key = data["unseal_key"]
        except (ValueError, KeyError, TypeError):
            raise CorruptKeyFileError(path, "not valid JSON with unseal_key") from None
        if not isinstance(key, str) or not key:
            raise CorruptKeyFileError(path, "empty unseal_key")
        legacy = data.get("root_token")
        if isinstance(legacy, str) and legacy:
            # One file per secret: the token moves to its own file, the key file keeps the key.
            write_secret(self.root_token_file, legacy)
            write_secret_json(path, {"unseal_key": key})
        return VaultKeys(key, self._root_token())

    def _root_token(self) -> str | None:
        try:
            token = self.root_token_file.read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CorruptKeyFileError(self.root_token_file, f"unreadable: {exc.strerror}") from None
        return token or None

    def forget_root_token(self) -> None:
        """Delete the root token's file (``custodia init`` calls it once it revoked the token)."""
        with contextlib.suppress(FileNotFoundError):
            self.root_token_file.unlink()

    def generate_root_token(self, token: str) -> str:
        """A new root token, made with the unseal key kept here and ``token``, a token allowed
        on ``sys/generate-root-token/*`` (a coadministrator's: two parties, the one who holds
        the unseal key and a coadministrator). What ``bao operator generate-root`` does with
        BAO_TOKEN set: start an attempt (one-time password), give the key, decode. For an
        operator who needs one (applying the layout again, an investigation); revoke it after
        use (``bao token revoke -self``). Every use is in OpenBao's audit log."""
        info = self.info()
        if info is None:
            raise StackNotRunningError(self.home)
        port = info.vault.port
        keys = self.vault_keys()
        base = "/v1/sys/generate-root-token"
        _bao_request(port, "DELETE", f"{base}/attempt", token)  # cancel an abandoned attempt
        status, started = _bao_request(port, "PUT", f"{base}/attempt", token, {})
        data = (started or {}).get("data") or started or {}
        if status != 200 or not data.get("otp"):
            raise RootTokenGenerationError(f"attempt answered {status}")
        nonce, otp = str(data["nonce"]), str(data["otp"])
        status, done = _bao_request(
            port, "PUT", f"{base}/update", token, {"key": keys.unseal_key, "nonce": nonce}
        )
        data = (done or {}).get("data") or done or {}
        if status != 200 or not data.get("encoded_token"):
            raise RootTokenGenerationError(f"update answered {status}")
        encoded = str(data["encoded_token"])
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
        return bytes(a ^ b for a, b in zip(raw, otp.encode(), strict=False)).decode()

    def claim_service(self) -> Any:
        """This home's one ``custodia servicio``: an exclusive lock on ``run/servicio.lock``,
        held while the returned file stays open (the system releases it when the process
        ends, however it ends). A second one is refused (:class:`ServiceAlreadyRunningError`)
        before it starts anything: two would take turns on the home's records (one stopping
        would forget the other, which ``custodia detener`` would then leave running)."""
        try:
            self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle = open(self.run_dir / "servicio.lock", "a+b")  # noqa: SIM115 - held open
        except OSError as exc:
            raise HomeNotWritableError(self.home, exc.strerror or str(exc)) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            with self._locked():
                service = self._read_stack().get("service") or {}
            raise ServiceAlreadyRunningError(self.home, service.get("pid")) from None
        return handle

    def record_service(self, pid: int | None) -> None:
        """Record the pid of the running ``custodia servicio`` for this home; ``None``: this
        process's record is forgotten (a record of another process is left alone)."""
        with self._locked():
            record = self._read_stack()
            if pid is None:
                if (record.get("service") or {}).get("pid") not in (None, os.getpid()):
                    return
                record.pop("service", None)
            else:
                record["service"] = {"pid": pid, "port": 0, "aux_port": 0}
            self._write_json(self.stack_file, record)

    # -- NATS -------------------------------------------------------------------------------

    def _nats_config(self, port: int, http_port: int) -> NatsConfig:
        return NatsConfig(
            store_dir=self.nats_dir / "jetstream",
            port=port,
            http_port=http_port,
            server_name="custodia-embedded",
            extra=self._nats_extra(),
        )

    def _nats_extra(self) -> str:
        """Extra NATS configuration (accounts and permissions), if a file is provided."""
        extra = self.nats_dir / "auth.conf"
        return f"include {json.dumps(extra.name)}\n" if extra.exists() else ""

    def _ensure_nats(self, entry: dict[str, Any] | None, started: list[int]) -> ServerRecord:
        if entry and self._is_ours(int(entry["pid"]), "nats"):
            proc = NatsProcess(
                int(entry["pid"]),
                int(entry["port"]),
                int(entry["aux_port"]),
                self.nats_dir / "jetstream",
                self.nats_dir / "nats.conf",
                self.nats_dir / "nats.log",
            )
            if proc.healthy():
                return server_record(entry)
            terminate(proc.pid)
        self._kill_orphans("nats")
        port = self._choose_port(custodia_config.NATS_PORT, entry, "port", "NATS")
        http_port = self._reuse_or_free(entry, "aux_port", {port})
        proc = servers.start_nats(
            self._nats_config(port, http_port),
            self.nats_dir / "nats.conf",
            self.nats_dir / "nats.log",
        )
        started.append(proc.pid)
        return ServerRecord(proc.pid, proc.port, proc.http_port)

    # -- OpenBao ----------------------------------------------------------------------------

    def _ensure_vault(self, entry: dict[str, Any] | None, started: list[int]) -> ServerRecord:
        if entry and self._is_ours(int(entry["pid"]), "vault"):
            proc = BaoProcess(
                int(entry["pid"]),
                int(entry["port"]),
                int(entry["aux_port"]),
                self.bao_dir / "openbao.log",
            )
            if proc.health() in (200, 501, 503):
                self._init_and_unseal(proc)
                return server_record(entry)
            terminate(proc.pid)
        self._kill_orphans("vault")
        if self.key_file.exists():
            self.vault_keys()  # a corrupt key file is refused before any server starts
        port = self._choose_port(custodia_config.VAULT_PORT, entry, "port", "OpenBao")
        cluster_port = self._reuse_or_free(entry, "aux_port", {port})
        config = self.bao_dir / "openbao.hcl"
        (self.bao_dir / "data").mkdir(parents=True, exist_ok=True)
        config.write_text(
            servers.render_bao_config(
                self.bao_dir / "data", self.bao_dir / "audit.log", port, cluster_port
            )
        )
        proc = servers.start_bao(config, self.bao_dir / "openbao.log", port, cluster_port)
        started.append(proc.pid)
        self._init_and_unseal(proc)
        return ServerRecord(proc.pid, proc.port, proc.cluster_port)

    def _init_and_unseal(self, proc: BaoProcess) -> None:
        status, seal = http_get_json(proc.port, "/v1/sys/seal-status")
        if status != 200 or not isinstance(seal, dict):
            raise servers.ServerStartError(
                "OpenBao", f"seal-status answered {status}", proc.log_file
            )
        if not seal.get("initialized"):
            if self.key_file.exists():
                # Keys for data that no longer exists: keep them aside, never overwrite silently.
                self.key_file.rename(self.key_file.with_suffix(".json.orphan"))
            status, body = http_put_json(
                proc.port, "/v1/sys/init", {"secret_shares": 1, "secret_threshold": 1}, timeout=60
            )
            if status != 200 or not isinstance(body, dict):
                raise servers.ServerStartError("OpenBao", f"init answered {status}", proc.log_file)
            # The unseal key and the root token in two files: the token is revoked (and its
            # file deleted) at the end of ``custodia init``; the key stays, for every start.
            write_secret(self.root_token_file, str(body["root_token"]))
            write_secret_json(self.key_file, {"unseal_key": body["keys_base64"][0]})
        if seal.get("sealed", True) or not seal.get("initialized"):
            keys = self.vault_keys()
            status, body = http_put_json(proc.port, "/v1/sys/unseal", {"key": keys.unseal_key})
            if status != 200 or not isinstance(body, dict) or body.get("sealed", True):
                raise UnsealError(self.key_file)
        self._wait_active(proc)

    def _wait_active(self, proc: BaoProcess, wait: float = 30.0) -> None:

        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc.health() == 200:
                return
            time.sleep(0.1)
        raise servers.ServerStartError("OpenBao", "unsealed but never became active", proc.log_file)

    # -- files, ports, locks ----------------------------------------------------------------

    def _prepare_home(self) -> None:
        try:
            # The home and all in it are its owner's alone: besides secrets/, it holds the
            # projections (incident details, who read which account when) and the logs.
            self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.home.stat().st_uid == os.getuid():
                os.chmod(self.home, 0o700)
            for directory in (self.run_dir, self.nats_dir, self.bao_dir, self.secrets_dir):
                directory.mkdir(mode=0o700, exist_ok=True)
                os.chmod(directory, 0o700)
            probe = self.run_dir / ".write-probe"
            probe.write_text("")
            probe.unlink()
            self._ensure_nats_auth()
        except OSError as exc:
            raise HomeNotWritableError(self.home, exc.strerror or str(exc)) from None

    @property
    def nats_users_file(self) -> Path:
        """The former single file of every NATS password (split at the next start)."""
        return self.secrets_dir / "nats-users.json"

    def nats_user_file(self, name: str) -> Path:
        return nats_auth.user_file(self.secrets_dir, name)

    def nats_user(self, name: str) -> nats_auth.NatsUser:
        """One embedded NATS identity and its password (each in a file of its own)."""
        path = self.nats_user_file(name)
        try:
            return nats_auth.load_user(path, name)
        except (OSError, ValueError, KeyError):
            raise CorruptKeyFileError(path, "unreadable") from None

    @property
    def callout_seed_file(self) -> Path:
        """The auth callout's issuer seed (custody.service.callout): signs people's NATS users."""
        return self.secrets_dir / "nats-emisor.seed"

    def callout_seed(self) -> str:
        try:
            seed = self.callout_seed_file.read_text().strip()
        except OSError:
            raise CorruptKeyFileError(self.callout_seed_file, "unreadable") from None
        if not seed.startswith("SA"):
            raise CorruptKeyFileError(self.callout_seed_file, "not an account seed")
        return seed

    def nats_users(self) -> dict[str, nats_auth.NatsUser]:
        """Every embedded NATS identity (the supervisor renders the server's configuration)."""
        return {name: self.nats_user(name) for name in nats_auth.USERS}

    def _ensure_nats_auth(self) -> None:
        # The trust boundary (custody.service.permissions) applies to the embedded server too. One
        # file
        # per identity: a command line reads only its own.
        former: dict[str, nats_auth.NatsUser] = {}
        if self.nats_users_file.exists():
            try:
                former = nats_auth.load_users(self.nats_users_file)
            except (OSError, ValueError, KeyError):
                raise CorruptKeyFileError(self.nats_users_file, "unreadable") from None
        fresh = nats_auth.generate_users()
        written = False
        for name in nats_auth.USERS:
            if not self.nats_user_file(name).exists():
                nats_auth.save_user(self.nats_user_file(name), former.get(name, fresh[name]))
                written = True
        self.nats_users_file.unlink(missing_ok=True)
        # No shared client credential any more: people connect through the auth callout.
        self.nats_user_file("cliente").unlink(missing_ok=True)
        if not self.callout_seed_file.exists():
            from custody.service.callout import new_issuer_seed

            fd = os.open(self.callout_seed_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(new_issuer_seed())
        from custody.service.callout import issuer_public_key

        issuer = issuer_public_key(self.callout_seed())
        target = self.nats_dir / "auth.conf"
        # The configuration without its passwords: when it is what the server already has, the
        # passwords are not read at all (``custodia servicio`` starting the stack does not load
        # the administrative identity's); they are read only to write a new configuration.
        shape = nats_auth.render_accounts(
            {name: nats_auth.NatsUser(name, "") for name in nats_auth.USERS},
            nats_auth.LEDGER_STREAMS,
            nats_auth.EVENT_SUBJECTS,
            issuer,
        )
        digest = hashlib.sha256(shape.encode()).hexdigest()
        marker = self.nats_dir / "auth.conf.forma"
        if not written and target.exists() and marker.exists() and marker.read_text() == digest:
            return
        conf = nats_auth.render_accounts(
            self.nats_users(), nats_auth.LEDGER_STREAMS, nats_auth.EVENT_SUBJECTS, issuer
        )
        if not target.exists() or target.read_text() != conf:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(conf)
        marker.write_text(digest)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # flock is released by the kernel when the holder dies, so a SIGKILLed supervisor
        # never leaves the home locked.
        try:
            # With external servers nothing else creates run/ (the service records itself).
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.run_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise HomeNotWritableError(self.home, exc.strerror or str(exc)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read_stack(self) -> dict[str, Any]:
        return read_stack(self.home)

    def _write_stack(self, info: StackInfo) -> None:
        record = self._read_stack()
        record.update(nats=info.nats.to_json(), vault=info.vault.to_json())
        self._write_json(self.stack_file, record)

    def _write_json(self, path: Path, data: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)

    def _is_ours(self, pid: int, name: str) -> bool:
        return is_ours(self.home, pid, name)

    def _kill_orphans(self, name: str) -> None:
        """End servers of this home that no ``stack.json`` records (a start killed midway):
        they hold the storage locks a new server needs."""
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                pid = int(entry.name)
                if name in ("nats", "vault") and self._is_ours(pid, name):
                    terminate(pid)

    def _choose_port(
        self,
        variable: custodia_config.Variable,
        entry: dict[str, Any] | None,
        key: str,
        server: str,
    ) -> int:
        port = custodia_config.fixed_port(variable, self.env)
        if port is not None:
            if not port_is_free(port):
                raise servers.PortInUseError(port, server)
            return port
        return self._reuse_or_free(entry, key, set())

    @staticmethod
    def _reuse_or_free(entry: dict[str, Any] | None, key: str, exclude: set[int]) -> int:
        if entry:
            previous = int(entry.get(key, 0))
            if previous and previous not in exclude and port_is_free(previous):
                return previous
        return free_port(exclude)


def _bao_request(
    port: int, method: str, path: str, token: str, payload: dict[str, Any] | None = None
) -> tuple[int, Any]:
    """One request to the embedded OpenBao with ``token``: status and decoded JSON (or None)."""
    return servers.http_json(
        servers.LOOPBACK, port, path, method=method, payload=payload, token=token, timeout=10.0
    )
