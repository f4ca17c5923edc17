#!/usr/bin/env bash
# Install Debian's clickhouse-server (18.16) for the integration tests, without running its service.
#
# Idempotent: does nothing when a server binary is already there. The tests start their own
# clickhouse-server process (tests/support/clickhouse_server.py: own config, data dir and free ports on
# 127.0.0.1), so the package's init script must not start the system instance on 9000/8123. The package's
# postinst calls `invoke-rc.d clickhouse-server start`; a policy-rc.d that exits 101 denies that. Docker
# images usually ship one; when this machine has none we put one in place for the install only.
set -euo pipefail

find_binary() {
    local candidate
    for candidate in /usr/sbin/clickhouse-server /usr/bin/clickhouse-server /usr/bin/clickhouse; do
        if [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if existing=$(find_binary); then
    echo "install-clickhouse-server: already installed ($existing), nothing to do"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-clickhouse-server: needs root to apt-get install clickhouse-server" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

policy=/usr/sbin/policy-rc.d
temporary_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from scripts/install-clickhouse-server.sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    temporary_policy=1
fi
log=$(mktemp)
cleanup() {
    rm -f "$log"
    if [ "$temporary_policy" = 1 ]; then
        rm -f "$policy"
    fi
}
trap cleanup EXIT
fail() {
    echo "install-clickhouse-server: $1 failed:" >&2
    tail -n 20 "$log" >&2
    exit 1
}

updated="without apt-get update"
if ! apt-cache show clickhouse-server >/dev/null 2>&1; then
    apt-get update -q >"$log" 2>&1 || fail "apt-get update"
    updated="after apt-get update"
fi
apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    clickhouse-server >"$log" 2>&1 || fail "apt-get install clickhouse-server"

# Belt and braces: if something started the system instance anyway, stop it and keep it from booting.
stopped=""
if [ -x /etc/init.d/clickhouse-server ] && pgrep -f -- "--config-file=/etc/clickhouse-server/config.xml" >/dev/null 2>&1; then
    /etc/init.d/clickhouse-server stop >/dev/null 2>&1 || true
    stopped=", stopped the system service it started"
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now clickhouse-server.service >/dev/null 2>&1 || true
fi
update-rc.d clickhouse-server disable >/dev/null 2>&1 || true

installed=$(find_binary) || {
    echo "install-clickhouse-server: apt-get install finished but no clickhouse-server binary was found" >&2
    exit 1
}
version=$(dpkg-query -W -f='${Version}' clickhouse-server 2>/dev/null || echo unknown)
echo "install-clickhouse-server: installed clickhouse-server $version ($installed) $updated, service not started$stopped"
