#!/usr/bin/env bash
# Install what the test suite needs and run all of it. .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

need_debs=()
command -v ip >/dev/null || need_debs+=(iproute2)
command -v tc >/dev/null || need_debs+=(iproute2)
# libpcap: scapy compiles BPF capture filters with it (mirror-port capture, live listening).
ldconfig -p | grep -q "libpcap.so" || need_debs+=(libpcap0.8)
if [ "${#need_debs[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_debs[@]}" >/dev/null
  else
    echo "missing system tools: ${need_debs[*]} (install them, or run this as root on Debian)" >&2
  fi
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test]"
python3 -m mypy
python3 -m ruff check scanner tests
export CAMSWEEP_REQUIRE_ROOT_TESTS=1
python3 -m pytest -q "$@"
