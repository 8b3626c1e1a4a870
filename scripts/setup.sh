#!/usr/bin/env bash
# Install what moorage needs on a fresh Debian machine (as root) and build it.
# Idempotent: quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in busybox-static runc iproute2 iptables pkg-config; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${MOORAGE_PEERS:-0}" = 1 ]; then
    for pkg in podman crun skopeo umoci; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
    done
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python3 -m pip install -q --root-user-action=ignore "maturin>=1.5,<2" pytest pytest-benchmark nox click pluggy rich
python3 -m pip install -q --root-user-action=ignore .
