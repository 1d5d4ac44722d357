"""docker-compose.yml is valid and describes PostgreSQL, Redis, migrations at start and two app replicas."""

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
    assert {"db", "redis", "migrate", "app"} <= set(services)
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
