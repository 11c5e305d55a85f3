#!/usr/bin/env bash
# The one benchmark command (docs/performance.md): builds the Release maild in
# build/release if it is missing or out of date (one compile job by default:
# the development machine is shared; BUILD_JOBS sets it), raises the open-files
# limit for the idle-sessions figure, then runs tests/bench/bench.py, which
# measures maild against Postfix, smtp-sink and Dovecot in one run and prints
# the table. Arguments go to bench.py: --quick, --csv FILE, --only STAGES,
# --rounds N, --dry-run (see bench.py --help). Needs root and
# scripts/install-deps.sh bench.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ " $* " != *" --dry-run "* ]]; then
  if [[ ! -f build/release/build.ninja ]]; then
    cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DMAILD_TESTS=OFF >/dev/null
  fi
  nice -n 10 cmake --build build/release -j "${BUILD_JOBS:-1}" --target maild mailctl >&2
fi

# 10,000 client sockets and 10,000 server sockets: the hard limit is the ceiling.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 -u tests/bench/bench.py "$@"
