#!/usr/bin/env bash
# The test command: installs what is missing, builds maild with AddressSanitizer
# and UndefinedBehaviorSanitizer plus the libFuzzer targets, and runs every test
# (unit, store conformance, protocol, fuzz, and integration against the real binaries).
# Warnings are errors when CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh test

werror=OFF
[[ "${CI:-}" == "true" ]] && werror=ON
jobs=$(nproc)

echo "== fuzz targets (clang, libFuzzer)"
cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ \
  -DMAILD_FUZZ=ON -DMAILD_WERROR="$werror" >/dev/null
cmake --build build/fuzz -j "$jobs"

echo "== maild with ASan+UBSan"
cmake -S . -B build/test -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMAILD_SANITIZE=ON \
  -DMAILD_WERROR="$werror" -DMAILD_FUZZ_DIR="$PWD/build/fuzz" >/dev/null
cmake --build build/test -j "$jobs"

echo "== tests"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir build/test --output-on-failure -j "$jobs"
