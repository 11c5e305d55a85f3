#!/usr/bin/env bash
# Builds the Release maild (as scripts/quickstart.sh does, but with one
# compile job: the development machine is shared) if it is missing or out of
# date, then runs the POP3 maildrop benchmark and prints its table.
# Arguments go to tests/bench/pop3_maildrop.py, e.g. --csv pop3.csv.
# BUILD_JOBS sets the compile jobs (default 1).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ ! -f build/release/build.ninja ]]; then
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DMAILD_TESTS=OFF >/dev/null
fi
cmake --build build/release -j "${BUILD_JOBS:-1}" >&2  # a no-op when up to date

exec python3 tests/bench/pop3_maildrop.py \
  --maild build/release/src/daemon/maild --mailctl build/release/src/admin/mailctl "$@"
