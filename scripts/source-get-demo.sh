#!/usr/bin/env bash
# The SOURCE/GET demo of docs/source-get.md: two maild instances on one
# machine, each with its own SQLite store, and a private dnsmasq giving each
# domain its MX:
#   origin.test  MX mx.origin.test = 127.0.0.2   (alice)
#   dest.test    MX mx.dest.test   = 127.0.0.3   (bob)
# alice submits a message for bob to origin (submission, STARTTLS + AUTH);
# origin offers it to dest with SOURCE instead of DATA; dest fetches it back
# by GET from origin.test's MX and delivers it marked verified; bob reads it
# by POP3. The script prints each step, what each side's log and mailctl
# show, and the message bob got. Everything lives in a temp folder and stops
# at the end (only the processes this script started, by PID).
#
# Needs a built maild (scripts/quickstart.sh builds build/release), dnsmasq
# and python3. MAILD and MAILCTL choose other binaries; DEMO_PORT (SMTP on
# both addresses, default 2525), DEMO_SUBMISSION_PORT (2587), DEMO_POP3_PORT
# (2110) and DEMO_DNS_PORT (127.0.0.1, 2053) other ports.
set -euo pipefail
cd "$(dirname "$0")/.."

maild=${MAILD:-build/release/src/daemon/maild}
mailctl=${MAILCTL:-build/release/src/admin/mailctl}
smtp_port=${DEMO_PORT:-2525}
submission_port=${DEMO_SUBMISSION_PORT:-2587}
pop3_port=${DEMO_POP3_PORT:-2110}
dns_port=${DEMO_DNS_PORT:-2053}
dnsmasq=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
for tool in "$maild" "$mailctl" "$dnsmasq"; do
  [[ -x $tool ]] || { echo "source-get-demo: $tool is missing (build maild; install dnsmasq)" >&2; exit 2; }
done

dir=$(mktemp -d /tmp/maild-source-get-demo.XXXXXX)
pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap stop EXIT

step() { printf '\n== %s\n' "$*"; }

# Each side: a config, a store, a domain and a user.
make_side() {  # name address domain user password peer
  local name=$1 address=$2 domain=$3 user=$4 password=$5 peer=$6
  mkdir -p "$dir/$name"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/$name/key.pem" -out "$dir/$name/cert.pem" -days 2 \
    -subj "/CN=mx.$domain" 2>/dev/null
  cat > "$dir/$name/mail.conf" <<CONF
[server]
hostname = mx.$domain
[log]
file = maild.log
[store]
path = mail.db
[tls]
cert = cert.pem
key = key.pem
[smtp]
listen = $address:$smtp_port
submission = $address:$submission_port
submissions =
[pop3]
listen = $address:$pop3_port
pop3s =
[dns]
servers = 127.0.0.1:$dns_port
[delivery]
smtp_port = $smtp_port
bind_address = $address
retry_schedule = 5s
[reverse]
# dest fetches from origin, whose MX is on a loopback address: only when it is named.
trusted_peers = $peer
CONF
  MAILD_CONFIG=$dir/$name/mail.conf "$mailctl" db migrate >/dev/null
  MAILD_CONFIG=$dir/$name/mail.conf "$mailctl" domain add "$domain"
  printf '%s\n' "$password" | MAILD_CONFIG=$dir/$name/mail.conf "$mailctl" user add "$user@$domain"
}

step "DNS: dnsmasq on 127.0.0.1:$dns_port"
"$dnsmasq" --keep-in-foreground --port="$dns_port" --listen-address=127.0.0.1 --bind-interfaces \
  --no-resolv --no-hosts --conf-file=/dev/null --pid-file= --log-facility="$dir/dnsmasq.log" \
  --mx-host=origin.test,mx.origin.test,10 --host-record=mx.origin.test,127.0.0.2 \
  --mx-host=dest.test,mx.dest.test,10 --host-record=mx.dest.test,127.0.0.3 &
pids+=($!)
echo "origin.test MX mx.origin.test (127.0.0.2); dest.test MX mx.dest.test (127.0.0.3)"

step "origin: maild on 127.0.0.2, alice@origin.test"
make_side origin 127.0.0.2 origin.test alice alice-secret ""
step "dest: maild on 127.0.0.3, bob@dest.test"
make_side dest 127.0.0.3 dest.test bob bob-secret 127.0.0.2

for name in origin dest; do
  "$maild" --config "$dir/$name/mail.conf" &
  pids+=($!)
done

python3 - "$smtp_port" "$submission_port" "$pop3_port" <<'PY'
import smtplib, socket, ssl, sys, time
smtp, submission, pop3 = (int(p) for p in sys.argv[1:4])
deadline = time.monotonic() + 20
for address in ("127.0.0.2", "127.0.0.3"):
    for port in (smtp, submission, pop3):
        while True:
            try:
                socket.create_connection((address, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("maild did not listen on %s:%d" % (address, port))
                time.sleep(0.1)
print("\n== alice submits to origin (127.0.0.2:%d, STARTTLS, AUTH)" % submission)
message = (b"From: Alice <alice@origin.test>\r\nTo: Bob <bob@dest.test>\r\n"
           b"Subject: SOURCE/GET demo\r\nMessage-ID: <demo@origin.test>\r\n\r\n"
           b"Hello Bob, this message was fetched back from origin.test's MX.\r\n")
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.2", submission, local_hostname="alice.origin.test", timeout=30) as client:
    client.starttls(context=context)
    client.login("alice@origin.test", "alice-secret")
    client.sendmail("alice@origin.test", ["bob@dest.test"], message)
print("250: origin queued it for dest.test")
PY

step "waiting for bob's copy at dest"
for _ in $(seq 1 300); do
  if MAILD_CONFIG=$dir/dest/mail.conf "$mailctl" mail list --mailbox bob@dest.test | grep -qw verified; then
    break
  fi
  sleep 0.1
done

step "origin's log: SOURCE instead of DATA, then GET from dest"
grep -E 'SOURCE|GET|pickup' "$dir/origin/maild.log" || true
step "dest's log: SOURCE accepted, fetched by GET"
grep -E 'SOURCE|GET|retriev|fetch' "$dir/dest/maild.log" || true
step "dest: mailctl mail list"
MAILD_CONFIG=$dir/dest/mail.conf "$mailctl" mail list
step "dest: mailctl stats"
MAILD_CONFIG=$dir/dest/mail.conf "$mailctl" stats
step "origin: mailctl stats"
MAILD_CONFIG=$dir/origin/mail.conf "$mailctl" stats

step "bob reads it by POP3 (127.0.0.3:$pop3_port)"
python3 - "$pop3_port" <<'PY'
import poplib, sys
client = poplib.POP3("127.0.0.3", int(sys.argv[1]), timeout=30)
client.user("bob@dest.test")
client.pass_("bob-secret")
count, _ = client.stat()
if count != 1:
    sys.exit("bob has %d messages, not 1" % count)
_, lines, _ = client.retr(1)
client.quit()
print(b"\n".join(lines).decode())
PY
