#!/usr/bin/env bash
# Makes sure the Kafka clients test/compat runs are installed: kcat (librdkafka) and kafka-python, as
# Debian packages them. Quiet and idempotent when both are there. Missing ones are installed with
# apt-get when running as root; otherwise it says exactly what to install and exits 1.
set -euo pipefail

packages="kcat python3-kafka"

have_kcat() { command -v kcat >/dev/null 2>&1; }

# Debian's python3-kafka installs into /usr/bin/python3; a pyenv or virtualenv python3 earlier on PATH
# does not see it, so either interpreter will do (the tests probe them in the same order).
have_kafka_python() {
	local py
	for py in /usr/bin/python3 python3; do
		if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import kafka' >/dev/null 2>&1; then
			return 0
		fi
	done
	return 1
}

missing() {
	local m=()
	have_kcat || m+=(kcat)
	have_kafka_python || m+=(python3-kafka)
	echo "${m[*]:-}"
}

need=$(missing)
[ -z "$need" ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "test/compat needs Kafka clients that are not installed: $need" >&2
	echo "Install them (as root, on Debian or Ubuntu) with:" >&2
	echo "  apt-get install -y $packages" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when apt knows no candidate for something missing (a fresh image
# ships without lists).
for pkg in $need; do
	policy=$(apt-cache policy "$pkg" 2>/dev/null || true)
	if ! grep -Eq 'Candidate: [^(]' <<<"$policy"; then
		echo "install-clients: apt-get update (no candidate for $pkg yet)" >&2
		apt-get update -qq
		break
	fi
done
echo "install-clients: apt-get install -y -qq $packages" >&2
apt-get install -y -qq $packages >/dev/null

need=$(missing)
if [ -n "$need" ]; then
	echo "install-clients: still missing after apt-get install: $need" >&2
	echo "kafka-python must be importable by /usr/bin/python3 or python3; kcat must be on PATH." >&2
	exit 1
fi
