#!/usr/bin/env bash
# Install the Debian packages ccproxy's build and tests need, if they are missing.
#   install-system-deps.sh         everything the test suite runs for real
#   install-system-deps.sh build   only what building the dashboard needs (Node.js and npm)
#   install-system-deps.sh bench   everything, and wrk, the load generator of the benchmarks
set -euo pipefail
need=()
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ "${1:-all}" != build ]; then
  command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
  { command -v prometheus && command -v promtool; } >/dev/null || need+=(prometheus)
  command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
  command -v chromium >/dev/null || need+=(chromium)
  command -v clickhouse-server >/dev/null || need+=(clickhouse-server clickhouse-client)
fi
if [ "${1:-all}" = bench ]; then
  command -v wrk >/dev/null || need+=(wrk)
fi
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing Debian packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
