#!/usr/bin/env bash
# Install what the test suite needs and run all of it. .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

need_debs=()
command -v ip >/dev/null || need_debs+=(iproute2)
command -v tc >/dev/null || need_debs+=(iproute2)
# libpcap: scapy compiles BPF capture filters with it (mirror-port capture, live listening).
ldconfig -p | grep -q "libpcap.so" || need_debs+=(libpcap0.8)
# The HTML report is checked in a real headless Chromium (Debian's; playwright never downloads one),
# and its Chinese text needs a CJK font to render.
command -v chromium >/dev/null || need_debs+=(chromium)
{ command -v fc-list >/dev/null && [ -n "$(fc-list :lang=zh family)" ]; } || need_debs+=(fonts-noto-cjk)
# The sweep store is tested against a real PostgreSQL server (Debian's), started below.
command -v pg_ctlcluster >/dev/null || need_debs+=(postgresql)
if [ "${#need_debs[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_debs[@]}" >/dev/null
  else
    echo "missing system tools: ${need_debs[*]} (install them, or run this as root on Debian)" >&2
  fi
fi

# PostgreSQL for the sweep-store tests (root): a running cluster, a role for this user and a test
# database, reached by its unix socket (which works from inside the lab's namespaces too).
if [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null; then
  read -r pg_version pg_name pg_port _ < <(pg_lsclusters --no-header 2>/dev/null | head -n 1) || true
  if [ -z "${pg_version:-}" ]; then
    pg_version=$(ls /usr/lib/postgresql | sort -V | tail -n 1) pg_name=main
    pg_createcluster "$pg_version" "$pg_name" >/dev/null
    pg_port=$(pg_lsclusters --no-header | awk -v v="$pg_version" -v n="$pg_name" '$1 == v && $2 == n {print $3}')
  fi
  pg_ctlcluster "$pg_version" "$pg_name" status >/dev/null 2>&1 || pg_ctlcluster "$pg_version" "$pg_name" start
  pg_sql() { runuser -u postgres -- psql -p "$pg_port" -qtAc "$1"; }
  [ "$(pg_sql "SELECT 1 FROM pg_roles WHERE rolname = 'root'")" = 1 ] || pg_sql "CREATE ROLE root LOGIN CREATEDB"
  [ "$(pg_sql "SELECT 1 FROM pg_database WHERE datname = 'camsweep_test'")" = 1 ] \
    || pg_sql "CREATE DATABASE camsweep_test OWNER root"
  export CAMSWEEP_TEST_PG_URL="${CAMSWEEP_TEST_PG_URL:-postgresql:///camsweep_test?host=/var/run/postgresql&port=$pg_port}"
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test]"
python3 -m mypy
python3 -m ruff check scanner tests
export CAMSWEEP_REQUIRE_ROOT_TESTS=1
python3 -m pytest -q -n 2 --dist loadfile "$@"
