"""docker-compose.yml is valid and describes PostgreSQL, Redis, migrations at start, `refuge check` before the
app, and two app replicas; the image carries the PostgreSQL client tools `refuge backup` needs."""

from __future__ import annotations

import os
import shutil
import subprocess

import yaml

from tests.conftest import ROOT


def test_compose_file_is_valid_and_runs_two_replicas_after_migrations() -> None:
    compose = shutil.which("docker-compose")
    assert compose, "scripts/test installs docker-compose to validate the deployment file"
    result = subprocess.run(
        [compose, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env={**os.environ, "SECRET_KEY": "for-validation-only"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {"db", "redis", "migrate", "check", "app"} <= set(services)
    app = services["app"]
    assert app["deploy"]["replicas"] == 2
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["refuge", "db", "upgrade"]
    env = app["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert env["REDIS_URL"].startswith("redis://")


def test_compose_refuses_to_start_without_a_secret_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [shutil.which("docker-compose") or "docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_compose_checks_the_deployment_after_migrations_and_before_the_app() -> None:
    compose = shutil.which("docker-compose") or "docker-compose"
    result = subprocess.run(
        [compose, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env={**os.environ, "SECRET_KEY": "for-validation-only"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    check = services["check"]
    assert check["command"] == ["refuge", "check"]
    assert check["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["app"]["depends_on"]["check"]["condition"] == "service_completed_successfully"
    # The check sees what the app will run with, the ledger's keys included.
    assert check["environment"] == services["app"]["environment"]
    assert {"LEDGER_SIGNING_KEY", "LEDGER_PUBLIC_KEY", "SECRET_KEY", "BASE_URL"} <= set(check["environment"])


def test_the_image_has_pg_dump_for_backups() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "postgresql-client" in dockerfile
