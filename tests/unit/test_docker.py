"""Issue 14, the production path (``docker/``): what can be checked without a Docker engine,
which this machine does not have.

- The image: multi-stage, every base pinned to an exact release, a non-root user, what it
  copies exists, it installs the server extra only, and the command it runs exists (``python
  -m server serve``, and ``migrate`` for the one-shot job) in the code it copies.
- The compose file: valid against the Compose Specification's JSON schema, the one the
  ``docker-compose`` 1.29.2 wheel on PyPI ships (``compose/config/compose_spec.json``, copied
  to ``tests/unit/data/compose_spec.json``: Apache-2.0, the compose-spec project), after the
  ``${VAR:-default}`` interpolation compose itself does; then what the issue asks of it:
  PostgreSQL and a streaming replica, Redis, a one-shot migration job the servers wait for,
  the server scaled to N, health checks, and every secret from a file.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
SCHEMA = Path(__file__).parent / "data" / "compose_spec.json"
LONG_RUNNING = ("postgres", "postgres-replica", "redis", "server", "proxy")


def instructions(path: Path) -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def interpolated(text: str) -> str:
    """Compose's interpolation: ``${VAR:-default}`` and ``${VAR}`` as if VAR is unset (its
    default, else empty), ``${VAR:?message}`` as a value (compose would stop without one)."""

    def value(match: re.Match[str]) -> str:
        _, operator, rest = match.group(2), match.group(3) or "", match.group(4) or ""
        return rest if operator == ":-" else "set-by-operator" if operator == ":?" else ""

    return re.sub(r"\$\{(([A-Za-z_][A-Za-z0-9_]*))(:-|:\?)?([^}]*)\}", value, text)


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(interpolated((DOCKER / "compose.yaml").read_text()))
    assert isinstance(loaded, dict)
    return loaded


def test_the_image_is_multi_stage_pinned_and_runs_as_no_root() -> None:
    steps = instructions(DOCKER / "Dockerfile")
    bases = [rest.split()[0] for keyword, rest in steps if keyword == "FROM"]
    assert len(bases) >= 2, "multi-stage: a build stage and the final one"
    for base in bases:
        name, _, tag = base.partition(":")
        assert name == "python" and re.fullmatch(r"\d+\.\d+\.\d+-slim-[a-z]+(@sha256:\w+)?", tag), (
            f"{base}: pin an exact Python and Debian release"
        )
    final = steps[max(i for i, (k, _) in enumerate(steps) if k == "FROM") :]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the final stage runs as no root"
    assert any(k == "HEALTHCHECK" and "/healthz" in rest for k, rest in final)


def test_what_the_image_copies_exists_and_it_installs_the_server_alone() -> None:
    steps = instructions(DOCKER / "Dockerfile")
    for keyword, rest in steps:
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, _ = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    installs = [rest for keyword, rest in steps if keyword == "RUN" and "pip install" in rest]
    assert installs and all('".[server]"' in r for r in installs), installs


def test_the_command_the_image_runs_exists() -> None:
    steps = instructions(DOCKER / "Dockerfile")
    command = json.loads(next(rest for keyword, rest in reversed(steps) if keyword == "CMD"))
    assert command[:3] == ["python", "-m", "server"], command
    services = compose()["services"].values()
    jobs = {tuple(s["command"]) for s in services if isinstance(s.get("command"), list)}
    assert ("python", "-m", "server", "migrate") in jobs
    # the module the image runs, from the folders it copies, knows both commands
    shown = subprocess.run(
        [sys.executable, "-m", "server", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    ).stdout
    for sub in (command[3], "migrate"):
        assert re.search(rf"\b{sub}\b", shown), f"python -m server has no {sub!r}: {shown}"


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    validator = jsonschema_rs.Draft201909Validator(json.loads(SCHEMA.read_text()))
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in
              validator.iter_errors(compose())]  # fmt: skip
    assert errors == []


def test_the_compose_file_runs_what_the_issue_asks() -> None:
    spec = compose()
    services = spec["services"]
    # PostgreSQL and a streaming replica made with pg_basebackup, Redis, the servers, a proxy
    assert {"postgres", "postgres-replica", "redis", "migrate", "server", "proxy"} <= set(services)
    entry = DOCKER / services["postgres-replica"]["volumes"][1].split(":")[0]
    replica = entry.read_text()
    assert "pg_basebackup" in replica and "--write-recovery-conf" in replica
    assert "hot_standby=on" in replica
    # the migration job runs once, and every server waits for it to have succeeded
    server = services["server"]
    assert services["migrate"]["restart"] == "no"
    assert server["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert server["deploy"]["replicas"] >= 2  # scaled to N (--scale server=N)
    assert "ports" not in server, "replicas share no host port: the proxy spreads the load"
    # health checks on everything that keeps running
    for name in LONG_RUNNING:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_every_secret_comes_from_a_file() -> None:
    spec = compose()
    declared = spec["secrets"]
    assert all(set(s) == {"file"} for s in declared.values()), declared
    maker = (DOCKER / "make-secrets.sh").read_text()
    for name, secret in declared.items():
        assert f"secrets/{name}" in maker, f"make-secrets.sh does not make {name}"
        assert secret["file"] == f"./secrets/{name}"
    for name, service in spec["services"].items():
        env = service.get("environment", {})
        for key, value in env.items():
            assert not re.search(r"(PASSWORD|SECRET|KEY|DATABASE_URL)$", key), (
                f"{name}: {key} is in the environment; give it as {key}_FILE"
            )
            if key.endswith("_FILE"):
                secret = value.removeprefix("/run/secrets/")
                assert secret in service.get("secrets", []), f"{name}: {key} names {value}"
        for mention in re.findall(r"/run/secrets/([a-z_]+)", json.dumps(env)):
            assert mention in service.get("secrets", []), f"{name} does not mount {mention}"
    assert "docker/secrets/" in (ROOT / ".gitignore").read_text().split()


def parses(shell: str, script: Path) -> None:
    """``shell -n``: the script parses (nothing runs)."""
    program = shutil.which(shell)
    assert program is not None, f"no {shell} here"
    checked = subprocess.run(  # noqa: S603 - our own scripts, parsed only
        [program, "-n", str(script)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr


def test_the_database_helpers_are_shell_the_images_can_run() -> None:
    for script in (DOCKER / "postgres").glob("*.sh"):
        assert script.read_text().startswith("#!/bin/bash\n"), script
        parses("bash", script)
    maker = DOCKER / "make-secrets.sh"
    assert shlex.split(maker.read_text().splitlines()[0]) == ["#!/bin/sh"]
    parses("sh", maker)


def test_the_secrets_make_secrets_makes_are_what_the_servers_settings_read(tmp_path: Path) -> None:
    # what compose mounts at /run/secrets/NAME, the server reads through VOUCHER_X_FILE
    if shutil.which("openssl") is None:
        pytest.skip("make-secrets.sh needs openssl (apt-get install openssl)")
    shutil.copy(DOCKER / "make-secrets.sh", tmp_path / "make-secrets.sh")
    made = subprocess.run(  # noqa: S603 - our own script, in a folder of its own
        [str(shutil.which("sh")), str(tmp_path / "make-secrets.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    server = compose()["services"]["server"]
    env = {
        key: str(value).replace("/run/secrets/", f"{tmp_path}/secrets/")
        for key, value in server["environment"].items()
    }
    settings = Settings.from_env(env)
    assert settings.database_url.startswith("postgresql://vouchers:")
    assert settings.database_replica_url is not None
    assert "@postgres-replica:5432/" in settings.database_replica_url
    assert [k.kid for k in settings.qr_keys] == ["A"] and set(settings.idp_keys) == {"idp-1"}
    assert settings.redis_url == "redis://redis:6379/0"
