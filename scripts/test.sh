#!/usr/bin/env bash
# Installs what the test suite needs, if missing, then runs it with cargo-nextest.
#
# Safe to run again and again: each dependency is checked first and installed only
# when absent. Extra arguments go to `cargo nextest run`, e.g.
#   scripts/test.sh -p bosun            # one crate
#   scripts/test.sh -E 'test(kill9)'    # a filterset
# With CI set, the `ci` profile of .config/nextest.toml is used.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PAHO_REQUIREMENT='paho-mqtt>=2,<3'
# Microsoft's device SDK pins paho-mqtt 1.x, so it lives in a virtualenv of its own
# (tests find it through BOSUN_AZURE_PYTHON, exported below).
AZURE_REQUIREMENT='azure-iot-device>=2.14,<3'
AZURE_VENV="${BOSUN_AZURE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/bosun/azure-venv}"

log() { printf 'scripts/test.sh: %s\n' "$*" >&2; }

# Runs a command as root: directly when we are root, through sudo when it exists.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root (or sudo) to run: $*"
        return 1
    fi
}

APT_UPDATED=0
# Installs Debian packages, refreshing the package lists once per run.
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        log "apt-get not found: install $* with your package manager"
        return 1
    fi
    if [ "$APT_UPDATED" -eq 0 ]; then
        as_root apt-get update -qq
        APT_UPDATED=1
    fi
    log "installing $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

# Mosquitto: its clients for tests, the broker itself as the benchmark peer.
install_mosquitto() {
    local missing=()
    command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_install "${missing[@]}"
    fi
}

# The openssl command line: tls_clients.rs makes certificates and handshakes with it.
install_openssl() {
    command -v openssl >/dev/null 2>&1 || apt_install openssl
}

# paho-mqtt 2.x for the Python test clients.
install_paho() {
    local check='import sys, paho.mqtt as m; sys.exit(int(m.__version__.split(".")[0]) < 2)'
    if python3 -c "$check" >/dev/null 2>&1; then
        return 0
    fi
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    log "installing $PAHO_REQUIREMENT"
    local output
    if ! output=$(python3 -m pip install --quiet "$PAHO_REQUIREMENT" 2>&1); then
        if grep -q 'externally-managed-environment' <<<"$output"; then
            # PEP 668 (Debian's system Python): these machines exist to run the tests.
            python3 -m pip install --quiet --break-system-packages "$PAHO_REQUIREMENT"
        else
            printf '%s\n' "$output" >&2
            return 1
        fi
    fi
}

# azure-iot-device in its own virtualenv.
install_azure_sdk() {
    local python="$AZURE_VENV/bin/python"
    if [ -x "$python" ] && "$python" -c 'import azure.iot.device' >/dev/null 2>&1; then
        return 0
    fi
    log "installing $AZURE_REQUIREMENT into $AZURE_VENV"
    # Debian's python3 creates virtualenvs only with python3-venv (ensurepip) installed.
    if ! python3 -m venv --clear "$AZURE_VENV" >/dev/null 2>&1; then
        apt_install python3-venv
        python3 -m venv --clear "$AZURE_VENV"
    fi
    "$python" -m pip install --quiet "$AZURE_REQUIREMENT"
}

# cargo-nextest: the test runner (process per test, groups, timeouts).
install_nextest() {
    if ! cargo nextest --version >/dev/null 2>&1; then
        log "installing cargo-nextest"
        cargo install --locked cargo-nextest
    fi
}

install_mosquitto
install_openssl
install_paho
install_azure_sdk
install_nextest
export BOSUN_AZURE_PYTHON="$AZURE_VENV/bin/python"

# The device SDK must build without `std`: its no-std-check staticlib defines its own
# panic handler, so it fails to link if anything in the graph pulls `std` back in. It is
# cross-compiled for a Cortex-M4F (a target that has no `std` at all) when rustup can
# add that target, else built for this machine.
DEVICE_TARGET=thumbv7em-none-eabihf
check_device_no_std() {
    local target=()
    if rustup target list --installed 2>/dev/null | grep -qx "$DEVICE_TARGET" ||
        rustup target add "$DEVICE_TARGET" >/dev/null 2>&1; then
        target=(--target "$DEVICE_TARGET")
    else
        log "cannot add the $DEVICE_TARGET target; checking no_std on this machine's target"
    fi
    log "checking that bosun-device builds as #![no_std] ${target[*]:-}"
    cargo build --quiet --release --manifest-path crates/device/no-std-check/Cargo.toml \
        --target-dir target/no-std-check ${target[@]+"${target[@]}"}
}

# The whole workspace, unless the caller picked packages with -p/--package.
options=(--workspace)
for arg in "$@"; do
    case "$arg" in
        -p | -p* | --package | --package=*) options=() ;;
    esac
done
if [ -n "${CI:-}" ]; then
    options+=(--profile ci)
fi
if [ "${#options[@]}" -gt 0 ] && [ "${options[0]}" = "--workspace" ]; then
    check_device_no_std
fi
exec cargo nextest run ${options[@]+"${options[@]}"} "$@"
