# Sourced by the scripts in this folder: find or create .venv and install Vigil into it.
# Reinstalls only when pyproject.toml changed since the last install, so repeat runs are quick.
VENV="${VIGIL_VENV:-$PWD/.venv}"

ensure_venv() {
    local python="${PYTHON:-python3}"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "==> creating $VENV"
        "$python" -m venv "$VENV"
    fi
    local stamp="$VENV/.vigil-installed"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        echo "==> installing vigil (editable, with test extra) into $VENV"
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet -e ".[test]"
        touch "$stamp"
    fi
}
