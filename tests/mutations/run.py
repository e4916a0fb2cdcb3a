"""Security mutations: each one breaks a defence on purpose in a scratch copy of the repository
and runs the tests that must notice; a mutation that no test kills is a hole in the suite.

By hand only (pytest never collects this file: its name is not ``test_*.py``)::

    .venv/bin/python tests/mutations/run.py            # every mutation
    .venv/bin/python tests/mutations/run.py demo-any-refusal verifier-may-delete
    .venv/bin/python tests/mutations/run.py --list

Each mutation gets a fresh copy of the tracked files (``git ls-files``) with the working tree's
contents, one edit (which must still match exactly once: otherwise the mutation is reported as
stale, never silently skipped), and a pytest run of its short list of tests with that copy first
on ``PYTHONPATH`` (the ``custodia`` executable the e2e tests start imports the copy too). The
mutation is *killed* when pytest reports failures (exit 1), *survived* when the tests pass.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 900  # seconds per mutation's test run


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    file: str
    pattern: str  # a regular expression (re.S) that must match exactly once
    replacement: str
    tests: tuple[str, ...]
    then: tuple[str, ...] = ()  # a command run in the copy after the edit (python -m ...)
    note: str = ""


# Every deny of the titular/secretaria template: the mount-wide ones and the generated
# per-path ones (``${secret_denies}``), with the comment between them.
_DENY_BLOCKS = r'path "\$\{kv\}/\*" \{\n  capabilities = \["deny"\]\n\}\n.*?\$\{secret_denies\}\n'
# A policy must not be empty: one harmless rule stays.
_NO_DENY = 'path "sys/mounts" {\n  capabilities = ["deny"]\n}\n'
_REGENERATE = ("-m", "custody.vault.layout", "deploy/openbao/policies")
_POLICY_TESTS = (
    "tests/unit/custody/test_layout_unit.py",
    "tests/integration/custody/test_separation_of_duties.py",
)
_POLICY_NOTE = ""

MUTATIONS = [
    Mutation(
        "titular-deny-removed",
        "the titular's explicit deny on the KV, TOTP and transit mounts removed",
        "custody/vault/policies/titular.hcl",
        _DENY_BLOCKS,
        _NO_DENY,
        _POLICY_TESTS,
        _REGENERATE,
        _POLICY_NOTE,
    ),
    Mutation(
        "secretaria-deny-removed",
        "the secretaria's explicit deny on the KV, TOTP and transit mounts removed",
        "custody/vault/policies/secretaria.hcl",
        _DENY_BLOCKS,
        _NO_DENY,
        _POLICY_TESTS,
        _REGENERATE,
        _POLICY_NOTE,
    ),
    Mutation(
        "district-reads-directly",
        "the district administrator's policy grants read on the district's credentials again",
        "custody/vault/policies/administrador-distrito.hcl",
        r"(# Never a secret with this token)",
        'path "${kv}/data/cuentas/${district}/*" {\n  capabilities = ["read"]\n}\n\n\\1',
        ("tests/integration/custody/test_reads_outside_ledger.py",),
        _REGENERATE,
    ),
    Mutation(
        "service-skips-authorization",
        "the service acts for a caller whatever OpenBao answers on the caller's marker",
        "custody/vault/credentials.py",
        r"(        def parse\(body: dict\[str, Any\] \| None\) -> None:\n)",
        r"\1            return None\n",
        ("tests/integration/custody/test_reads_outside_ledger.py",),
    ),
    Mutation(
        "service-reads-unwrapped",
        "the service's policy no longer requires wrapping on current credentials",
        "custody/vault/policies/servicio.hcl",
        r'(path "\$\{kv\}/data/cuentas/\*" \{\n  capabilities = \["create", "read", "update"\]\n)'
        r'  min_wrapping_ttl = "1s"\n  max_wrapping_ttl = "300s"\n',
        r"\1",
        ("tests/integration/custody/test_reads_outside_ledger.py",),
        _REGENERATE,
    ),
    Mutation(
        "revelar-unsealed",
        "revelar's wrapping token sent in clear on the wire",
        "custody/service/commands.py",
        r'(_opt\(c\.args, "dispositivo", 100\),\n            \),\n)            "envoltorio",\n'
        r'(        \),\n        "totp\.registrar")',
        r"\1\2",
        ("tests/security/test_wire_eavesdropper.py",),
    ),
    Mutation(
        "client-accepts-unsealed",
        "the client takes a secret reply field that is not sealed",
        "custody/service/protocol.py",
        r'SEALED_FIELDS = frozenset\(\{"contrasena", "envoltorio"\}\)',
        "SEALED_FIELDS: frozenset[str] = frozenset()",
        ("tests/security/test_client_refuses_unsealed.py",),
    ),
    Mutation(
        "secret-logged-in-part",
        "the wrapping token logged without its last 2 characters",
        "custody/vault/credentials.py",
        r"(def _log_wrapped\(wrapped: WrappedSecret\) -> None:\n    log\.info\(\n"
        r'        "custody\.reveal\.wrapped",\n)',
        r"\1        hint=wrapped.token[:-2],\n",
        ("tests/integration/custody/test_no_secrets.py",),
    ),
    Mutation(
        "scanner-whole-secrets-only",
        "the secret scanner matches whole secrets only",
        "tests/support/secretscan.py",
        r"\nWINDOW = 8\n",
        "\nWINDOW = 10_000\n",
        ("tests/unit/custody/test_secretscan.py",),
    ),
    Mutation(
        "verifier-may-delete",
        "the verifier's NATS identity granted delete on the ledger streams",
        "custody/service/permissions.py",
        r'(            f"\$JS\.API\.STREAM\.MSG\.GET\.\{stream\}",\n)',
        r'\1            f"$JS.API.STREAM.MSG.DELETE.{stream}",\n',
        (
            "tests/security/test_verifier_permissions.py",
            "tests/integration/service/test_nats_trust_boundary.py",
            "tests/integration/ledger/test_permissions.py",
        ),
    ),
    Mutation(
        "service-answers-any-reply",
        "the service answers whatever reply subject a request names (reply-subject injection)",
        "custody/service/server.py",
        r"(def answerable\(reply: str \| None\) -> bool:\n    \"\"\"[^\n]*\"\"\"\n)",
        r"\1    return bool(reply)\n",
        ("tests/integration/service/test_reply_injection.py",),
    ),
    Mutation(
        "follower-ignores-anchor",
        "the ledger follower does not compare its tree with the head anchored in OpenBao",
        "custody/ledger/follower.py",
        r"(    def _resume\(self\) -> None:\n        self\._resume_from_stream\(\)\n)"
        r"        if self\._anchor is not None:\n"
        r"            self\._check_anchor\(self\._read_head\(\)\)\n",
        r"\1",
        ("tests/integration/ledger/test_anchor.py",),
    ),
    Mutation(
        "demo-any-refusal",
        "the demo's 'rechazada por OpenBao' step accepts any non-zero exit of revelar",
        "cli/demo_cmd.py",
        r"(def _former_refused\(s: Story\) -> str:\n).*?(\n\n\ndef )",
        r'\1    return s.refused("bety", "revelar", "--cuenta", "DD05-x", "--motivo", "x")\2',
        ("tests/e2e/test_demo.py",),
    ),
]


def copy_repo(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        name = raw.decode()
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def apply(mutation: Mutation, copy: Path) -> None:
    path = copy / mutation.file
    text = path.read_text()
    mutated, count = re.subn(mutation.pattern, mutation.replacement, text, flags=re.S)
    if count != 1:
        raise LookupError(f"{mutation.file}: the pattern matched {count} times (stale mutation)")
    path.write_text(mutated)
    if mutation.then:
        subprocess.run(
            [sys.executable, *mutation.then],
            cwd=copy, env=_env(copy), check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip


def _env(copy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_")}
    env["PYTHONPATH"] = str(copy)
    env.pop("CI", None)  # a skip is not a kill
    return env


def run(mutation: Mutation, keep: bool) -> tuple[str, str, float]:
    started = time.monotonic()
    copy = Path(tempfile.mkdtemp(prefix=f"custodia-mutation-{mutation.name}-"))
    try:
        copy_repo(copy)
        try:
            apply(mutation, copy)
        except LookupError as stale:
            return "STALE", str(stale), time.monotonic() - started
        probe = subprocess.run(
            [sys.executable, "-c", "import custody; print(custody.__file__)"],
            cwd=copy, env=_env(copy), capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert probe.stdout.startswith(str(copy)), "the copy is not the code under test"
        try:
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                 *mutation.tests],
                cwd=copy, env=_env(copy), capture_output=True, text=True, timeout=TIMEOUT,
                check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return "TIMEOUT", f"no verdict in {TIMEOUT} s", time.monotonic() - started
        failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, flags=re.M)
        if result.returncode == 1:
            return "killed", ", ".join(failed[:3]), time.monotonic() - started
        if result.returncode == 0:
            return "SURVIVED", "every listed test passed", time.monotonic() - started
        tail = result.stdout.strip().splitlines()[-1:] or ["?"]
        return f"ERROR(rc={result.returncode})", tail[0], time.monotonic() - started
    finally:
        if keep:
            print(f"  (copy kept: {copy})")
        else:
            shutil.rmtree(copy, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and stop")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    options = parser.parse_args()
    chosen = [m for m in MUTATIONS if not options.names or m.name in options.names]
    unknown = set(options.names) - {m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutation(s): {', '.join(sorted(unknown))}")
    if options.list:
        for m in chosen:
            print(f"{m.name:28} {m.what}\n{'':28} tests: {' '.join(m.tests)}")
        return 0
    survivors = 0
    for m in chosen:
        print(f"== {m.name}: {m.what}", flush=True)
        verdict, detail, seconds = run(m, options.keep)
        survivors += verdict != "killed"
        note = f"  [{m.note}]" if m.note and verdict != "killed" else ""
        print(f"   {verdict:9} {seconds:6.0f} s  {detail}{note}", flush=True)
    print(f"\n{len(chosen) - survivors} of {len(chosen)} mutations killed; {survivors} not")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
