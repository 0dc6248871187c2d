#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo need. Idempotent and
# fast when everything is already there.
set -euo pipefail
# Recommends are installed too (tor-geoipdb, fonts for Chromium screenshots);
# the packages named here are the ones the tests call directly.
pkgs=(tor tor-geoipdb snowflake-client snowflake-proxy iproute2 iptables nftables ca-certificates chromium haproxy systemd)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
