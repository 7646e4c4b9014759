"""The sample project as shipped: no debug page unless asked for, never on a public bind."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO, worker_env

PRINT_DEBUG = (
    "import sys; sys.path.insert(0, 'sample_project'); "
    "import sample_project.settings as s; print(s.DEBUG)"
)


@pytest.mark.parametrize(("value", "expected"), [(None, "False"), ("1", "True")])
def test_the_sample_settings_turn_debug_on_only_when_asked(value, expected):
    env = worker_env()
    env.pop("DJANGO_DEBUG", None)
    if value is not None:
        env["DJANGO_DEBUG"] = value

    result = subprocess.run(
        [sys.executable, "-c", PRINT_DEBUG],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert (result.returncode, result.stdout.strip()) == (0, expected), result.stderr


@pytest.mark.parametrize("procfile", ["Procfile", "Procfile.dev"])
def test_a_process_bound_to_every_interface_never_runs_with_debug(procfile):
    lines = (REPO / procfile).read_text().splitlines()

    public = [line for line in lines if "0.0.0.0" in line or "--bind :" in line]
    for line in public:
        _, command = line.split(":", 1)
        assert command.split()[0] == "DJANGO_DEBUG=0", line
    debug_on = [line for line in lines if "DJANGO_DEBUG=${DJANGO_DEBUG:-1}" in line]
    assert all("--bind 127.0.0.1:" in line for line in debug_on), debug_on
    assert public or debug_on  # each Procfile serves the web one way or the other
