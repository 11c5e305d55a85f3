#!/usr/bin/env bash
# The quick start: installs what is missing, builds maild (Release), creates
# ./var/ with a SQLite store, the demo domain example.test, a demo user with a
# printed password and a self-signed certificate, then runs maild in the
# foreground on 127.0.0.1: SMTP 2525, submission 2587, submissions 2465,
# POP3 2110, POP3S 2995. Ctrl-C stops it. Running it again reuses ./var/.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh build
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DMAILD_TESTS=OFF >/dev/null
cmake --build build/release -j "$(nproc)"

maild=build/release/src/daemon/maild
mailctl=build/release/src/admin/mailctl
var=$PWD/var
mkdir -p "$var"

if [[ ! -f "$var/mail.conf" ]]; then
  cat > "$var/mail.conf" <<CONF
# The quick start's maild: everything on 127.0.0.1, unprivileged ports.
# Every key and its default: config/mail.conf and docs/configuration.md.
[server]
hostname = mx.example.test

[store]
path = mail.db

[tls]
cert = cert.pem
key = key.pem

[smtp]
listen = 127.0.0.1:2525
submission = 127.0.0.1:2587
submissions = 127.0.0.1:2465

[pop3]
listen = 127.0.0.1:2110
pop3s = 127.0.0.1:2995
CONF
fi

if [[ ! -f "$var/cert.pem" ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$var/key.pem" -out "$var/cert.pem" -days 365 -subj /CN=mx.example.test \
    -addext subjectAltName=DNS:mx.example.test 2>/dev/null
  chmod 600 "$var/key.pem"
fi

export MAILD_CONFIG=$var/mail.conf
"$mailctl" db migrate
"$mailctl" domain list | grep -qx 'example.test' || "$mailctl" domain add example.test
if [[ ! -f "$var/demo-password" ]]; then
  (umask 077; openssl rand -base64 12 > "$var/demo-password")
  "$mailctl" user add demo@example.test < "$var/demo-password"
fi

cat <<INFO

maild quick start
  demo user:  demo@example.test
  password:   $(cat "$var/demo-password")
  SMTP 127.0.0.1:2525   submission 127.0.0.1:2587   submissions 127.0.0.1:2465
  POP3 127.0.0.1:2110   POP3S 127.0.0.1:2995 (certificate: var/cert.pem)
  mailctl:    MAILD_CONFIG=var/mail.conf $mailctl ...

INFO
exec "$maild" --config "$var/mail.conf"
