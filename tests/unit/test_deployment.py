"""The deployment files: deploy/systemd/ passes ``systemd-analyze verify`` and runs the
Procfile's commands (docs/deployment.md)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"
#: Where the units expect the application (its checkout and its virtualenv).
PREFIX = "/srv/stream-analysis"
#: Procfile process -> its unit.
UNIT_OF = {
    "worker": "stream-analysis-worker@.service",
    "scheduler": "stream-analysis-scheduler.service",
}


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found:
        return found
    message = "systemd-analyze is missing: apt-get install systemd (.ci/run does)."
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def installed_units(root: Path) -> list[Path]:
    """The units as an installer puts them: PREFIX under ``root``, this virtualenv as
    its venv, and an instance of the worker template."""
    app = root / PREFIX.lstrip("/")
    (app / "app").mkdir(parents=True)
    (app / "venv").symlink_to(sys.prefix)
    units = []
    for unit in sorted(UNITS.glob("*.service")):
        target = root / unit.name.replace("@.", "@1.")
        target.write_text(unit.read_text().replace(PREFIX, str(app)))
        units.append(target)
    return units


def test_the_systemd_units_pass_systemd_analyze_verify_without_a_warning(tmp_path: Path):
    command = [systemd_analyze(), "verify", "--man=no", *map(str, installed_units(tmp_path))]

    result = subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert (result.stdout + result.stderr).strip() == ""


def procfile() -> dict[str, str]:
    lines = (REPO / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def procfile_command(line: str) -> tuple[list[str], dict[str, str]]:
    """Words of a Procfile command with ``${X:-default}`` as ``${X}``, and its environment:
    leading ``X=value`` assignments and the defaults."""
    env = {key: default for key, default in re.findall(r"\$\{(\w+):-([^}]*)\}", line)}
    words = shlex.split(re.sub(r"\$\{(\w+):-[^}]*\}", r"${\1}", line))
    while "=" in words[0]:
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    return words, env


def unit_command(unit: Path) -> tuple[list[str], dict[str, str]]:
    """Words of a unit's ExecStart with the program by its name, and its Environment=."""
    env: dict[str, str] = {}
    words: list[str] = []
    for line in unit.read_text().splitlines():
        if line.startswith("Environment="):
            env.update(word.split("=", 1) for word in shlex.split(line.split("=", 1)[1]))
        elif line.startswith("ExecStart="):
            words = shlex.split(line.split("=", 1)[1])
    assert words[0].startswith(f"{PREFIX}/venv/bin/"), "run the application's virtualenv"
    return [Path(words[0]).name, *words[1:]], env


@pytest.mark.parametrize("process", sorted(UNIT_OF))
def test_each_systemd_unit_runs_its_procfile_command_with_the_same_defaults(process: str):
    words, env = procfile_command(procfile()[process])
    unit_words, unit_env = unit_command(UNITS / UNIT_OF[process])

    assert unit_words == words
    assert unit_env == env


def test_the_worker_gives_up_on_its_batch_before_systemd_kills_it():
    words, _ = procfile_command(procfile()["worker"])
    unit = (UNITS / UNIT_OF["worker"]).read_text()
    stop_seconds = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M)[1])  # type: ignore[index]
    shutdown_ms = int(words[words.index("--worker-shutdown-timeout") + 1])

    assert shutdown_ms < stop_seconds * 1000
    assert re.search(r"^KillMode=mixed$", unit, re.M)


def test_the_sample_project_behind_pgbouncer_gives_the_broker_the_direct_connection():
    # Given the Procfile's environment on a platform with PgBouncer
    env = dict(
        os.environ,
        DATABASE_URL="postgres://app@pgbouncer.internal:6432/app",
        DIRECT_DATABASE_URL="postgres://app@db.internal:5432/app",
        DJANGO_SETTINGS_MODULE="sample_project.settings",
    )
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "d = s.DATABASES; print(d['default']['HOST'], "
        "d['default']['OPTIONS']['prepare_threshold'], "
        "d['default']['DISABLE_SERVER_SIDE_CURSORS'], d['direct']['HOST'], "
        "s.DRAMATIQ_BROKER['OPTIONS']['database_alias'])"
    )

    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=REPO / "sample_project",
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    # Then Django goes through PgBouncer without prepared statements, the broker direct
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["pgbouncer.internal", "None", "True", "db.internal", "direct"]
