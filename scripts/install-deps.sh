#!/usr/bin/env bash
# Installs, from Debian's packages, what maild needs and is not there yet.
#   scripts/install-deps.sh build   compilers and libraries: enough to build and run maild
#   scripts/install-deps.sh test    the above, plus sanitizer/fuzzer runtimes and the test peers
#   scripts/install-deps.sh bench   the above, plus the benchmark's anchors and profilers
#                                   (tests/bench/, docs/performance.md)
# Skips every package already installed; needs root (or sudo) only when something is missing.
set -euo pipefail

profile=${1:-build}

build_packages=(
  build-essential cmake ninja-build pkg-config ccache openssl
  libboost-dev libboost-program-options-dev
  libmysqlcppconn-dev libc-ares-dev libssl-dev libspdlog-dev libsqlite3-dev
  libcrypt-dev libsystemd-dev libgtest-dev libgmock-dev
)
test_packages=(
  clang libclang-rt-dev python3 python3-cryptography sqlite3 procps
  postfix swaks libnet-ssleay-perl
  mpop fetchmail dnsmasq-base
  mariadb-server mariadb-client
)
# Dovecot is the POP3 anchor of tests/bench (a private instance, never the system's);
# perf, valgrind (callgrind) and heaptrack are the profilers docs/performance.md uses.
bench_packages=(
  dovecot-core dovecot-pop3d
  linux-perf valgrind heaptrack
)

case "$profile" in
  build) wanted=("${build_packages[@]}") ;;
  test)  wanted=("${build_packages[@]}" "${test_packages[@]}") ;;
  bench) wanted=("${build_packages[@]}" "${test_packages[@]}" "${bench_packages[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: everything for '$profile' is installed"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
installs_postfix=false installs_mariadb=false installs_dovecot=false
for p in "${missing[@]}"; do
  [[ "$p" == postfix ]] && installs_postfix=true
  [[ "$p" == mariadb-server ]] && installs_mariadb=true
  [[ "$p" == dovecot-core ]] && installs_dovecot=true
done
if $installs_postfix; then
  # Tests run private Postfix instances (tests/integration/postfix_peer.py); the
  # system's own stays unconfigured: no /etc/postfix/main.cf, nothing on port 25.
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
if $installs_postfix; then
  # The package may still start the system instance (e.g. where systemd runs);
  # stop it and keep it from starting at boot. Our tests never use it.
  if command -v systemctl >/dev/null; then
    now=""; [[ -d /run/systemd/system ]] && now="--now"
    $sudo systemctl disable $now postfix.service >/dev/null 2>&1 || true
  fi
  if [[ -s /var/spool/postfix/pid/master.pid ]]; then
    $sudo postfix stop >/dev/null 2>&1 || true
  fi
fi
if $installs_mariadb; then
  # Tests run private MariaDB servers (tests/integration/mariadb_server.py) in
  # temp datadirs on free 127.0.0.1 ports; the system's own must not run (it
  # would sit on port 3306). The package starts it where it can: stop it through
  # its service manager (only the system service, never a test's server) and
  # keep it from starting at boot.
  if [[ -d /run/systemd/system ]]; then
    $sudo systemctl disable --now mariadb.service >/dev/null 2>&1 || true
  else
    # invoke-rc.d exits 0 even when policy-rc.d denies the stop: check again.
    if pgrep -x 'mariadbd|mysqld' >/dev/null; then
      $sudo invoke-rc.d mariadb stop >/dev/null 2>&1 || true
    fi
    if pgrep -x 'mariadbd|mysqld' >/dev/null; then
      $sudo service mariadb stop >/dev/null 2>&1 || true
    fi
    if command -v systemctl >/dev/null; then
      $sudo systemctl disable mariadb.service >/dev/null 2>&1 || true
    fi
    $sudo update-rc.d mariadb disable >/dev/null 2>&1 || true
  fi
  if pgrep -a -x 'mariadbd|mysqld' >&2; then
    echo "install-deps: warning: a MariaDB server still runs after stopping the system service" >&2
  fi
fi
if $installs_dovecot; then
  # The benchmark runs private Dovecot instances (tests/bench/dovecot_peer.py: its
  # own config in a temp folder, free 127.0.0.1 ports); the system's own must not
  # run (it would sit on ports 110 and 143). Stop only the system service, through
  # its service manager, and keep it from starting at boot.
  if [[ -d /run/systemd/system ]]; then
    $sudo systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
  else
    if [[ -s /run/dovecot/master.pid ]]; then
      $sudo invoke-rc.d dovecot stop >/dev/null 2>&1 || true
    fi
    if [[ -s /run/dovecot/master.pid ]] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
      $sudo doveadm -c /etc/dovecot/dovecot.conf stop >/dev/null 2>&1 || true
    fi
    if command -v systemctl >/dev/null; then
      $sudo systemctl disable dovecot.service >/dev/null 2>&1 || true
    fi
    $sudo update-rc.d dovecot disable >/dev/null 2>&1 || true
  fi
  if [[ -s /run/dovecot/master.pid ]] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
    echo "install-deps: warning: the system's Dovecot still runs after stopping its service" >&2
  fi
fi
