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

# The explorer's browser test drives Debian's chromium (Playwright's own browser download does not
# work on our machines). Install it with apt-get when it is missing and we may; when we cannot,
# say so and go on: that one test then skips and names the reason.
CHROMIUM=/usr/bin/chromium
ensure_chromium() {
    if [ -x "$CHROMIUM" ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "==> note: $CHROMIUM is missing and this user cannot apt-get it; the browser test will skip"
        return 0
    fi
    echo "==> installing Debian's chromium for the explorer's browser test (apt-get)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
           && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
         } >/tmp/vigil-apt-chromium.log 2>&1; then
        echo "==> note: installing chromium failed (see /tmp/vigil-apt-chromium.log); the browser test will skip"
    fi
    return 0
}
