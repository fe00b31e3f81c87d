"""docker-compose.yml read as configuration (no Docker engine here): every service the design
needs, healthchecks, and only settings and commands that Assay really has."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from click.testing import CliRunner

from app.cli import main
from app.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
WORKERS = ("worker-heavy", "worker-light")


def test_services_and_healthchecks():
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "redis", "web", "worker-heavy", "worker-light"}
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in ("web", *WORKERS):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_environment_names_real_settings_in_production_mode():
    fields = set(Settings.model_fields)
    for name in ("web", *WORKERS):
        env = COMPOSE["services"][name]["environment"]
        for key in env:
            assert key.startswith("ASSAY_") and key[6:].lower() in fields, key
        assert env["ASSAY_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["ASSAY_BROKER_URL"].startswith("redis://redis:")
        assert "ASSAY_SECRET_KEY" in env
    db_url = COMPOSE["services"]["web"]["environment"]["ASSAY_DATABASE_URL"]
    postgres_env = COMPOSE["services"]["postgres"]["environment"]
    assert re.search(
        rf"//{postgres_env['POSTGRES_USER']}:.*@postgres:5432/"
        rf"{postgres_env['POSTGRES_DB']}$",
        db_url,
    )


def test_commands_are_real_assay_commands():
    runner = CliRunner()
    for name in ("web", *WORKERS):
        command = COMPOSE["services"][name]["command"]
        assert command[0] == "assay"
        result = runner.invoke(main, [command[1], "--help"])
        assert result.exit_code == 0, result.output
        for option in (c for c in command[2:] if c.startswith("--")):
            assert option in result.output, f"{name}: unknown option {option}"


def test_healthcheck_path_is_served(client):
    web = COMPOSE["services"]["web"]["healthcheck"]["test"]
    path = re.search(r"127\.0\.0\.1:8000(/\w+)", " ".join(web))[1]
    assert client.get(path).json() == {"status": "ok"}


def test_workers_consume_the_configured_queues():
    settings = Settings()
    queues = {
        name: COMPOSE["services"][name]["command"][
            COMPOSE["services"][name]["command"].index("--queues") + 1
        ]
        for name in WORKERS
    }
    assert queues == {"worker-heavy": settings.heavy_queue, "worker-light": settings.light_queue}


def test_the_image_holds_every_front_end_package_the_server_serves():
    """The web image copies the npm packages it serves from node_modules (htmx, Swagger UI):
    a missing one is a 500 on its routes and a blank page inside the container."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = re.findall(r"COPY --from=assets /assets/(node_modules/\S+) (\S+)", dockerfile)
    settings = Settings()
    for served in (settings.htmx_js, settings.swagger_ui_dir):
        relative = served.relative_to(ROOT).as_posix()
        assert any(relative.startswith(source) and source == target for source, target in copied), (
            f"the Dockerfile does not copy {relative}"
        )
