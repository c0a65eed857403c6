#!/usr/bin/env bash
# Installs the independent SIP peers the interop tests and the SIP benchmark drive, from Debian's
# packages, only when missing. Idempotent; works as root or through sudo.
#
#   scripts/install-sip-peers.sh          test peers: SIPp, sipsak, baresip, linphonec, iproute2, sox
#   scripts/install-sip-peers.sh --bench  the same plus Kamailio (registrar + presence modules)
set -euo pipefail

bench=0
for arg in "$@"; do
  case "$arg" in
    --bench) bench=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "usage: scripts/install-sip-peers.sh [--bench]" >&2; exit 2 ;;
  esac
done

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "install-sip-peers: need root or sudo to install packages" >&2; return 1
  fi
}

# package → binary it provides (checked too, so a half-removed package is reinstalled)
pkgs=(sip-tester sipsak baresip-core linphone-cli iproute2 sox)
if [ "$bench" -eq 1 ]; then
  pkgs+=(kamailio kamailio-presence-modules)
fi

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for p in "${pkgs[@]}"; do
  installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-sip-peers: all present (${pkgs[*]})"
  exit 0
fi

echo "install-sip-peers: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists once, and only when apt cannot see a candidate for a missing package.
need_update=0
for p in "${missing[@]}"; do
  cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then need_update=1; break; fi
done
if [ "$need_update" -eq 1 ]; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
fi
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Kamailio's package enables a system service on hosts with an init system; the benchmark runs its
# own instance with its own config and ports, so leave the packaged one stopped where it started.
if [ "$bench" -eq 1 ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  as_root systemctl stop kamailio >/dev/null 2>&1 || true
  as_root systemctl disable kamailio >/dev/null 2>&1 || true
fi

for p in "${missing[@]}"; do
  installed "$p" || { echo "install-sip-peers: $p did not install" >&2; exit 1; }
done
echo "install-sip-peers: done"
