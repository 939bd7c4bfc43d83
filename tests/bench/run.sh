#!/usr/bin/env bash
# Run the benchmarks (as root): camsweep side by side with its anchors, nmap and tshark.
# They take minutes, which is why tests/run.sh (and CI) leaves them out.
set -euo pipefail
cd "$(dirname "$0")/../.."
missing=()
command -v nmap >/dev/null || missing+=(nmap)
command -v tshark >/dev/null || missing+=(tshark)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -e ".[test]"
python3 -m pytest -q -s -m bench tests/bench "$@"
