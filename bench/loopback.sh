# The loopback servers the reference hunt needs (sourced by bench/stories.sh and bench/compare.sh): unbound serving
# DNS-over-HTTPS for update.evil-cdn.example, and aiosmtpd accepting mail over STARTTLS with AUTH. Sets $doh (the
# DoH port), $smtp (the SMTP port) and $out/cert.pem; both stop when the sourcing script exits.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$out/key.pem" -out "$out/cert.pem" -days 2 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2> /dev/null
doh=$(free_port)
cat > "$out/unbound.conf" <<CONF
server:
  interface: 127.0.0.1@$doh
  https-port: $doh
  tls-service-pem: "$PWD/$out/cert.pem"
  tls-service-key: "$PWD/$out/key.pem"
  http-endpoint: "/dns-query"
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$PWD/$out"
  pidfile: "$PWD/$out/unbound.pid"
  use-syslog: no
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  local-zone: "update.evil-cdn.example." static
  local-data: "update.evil-cdn.example. 300 IN A 203.0.113.66"
CONF
/usr/sbin/unbound -d -c "$out/unbound.conf" &
unbound_pid=$!
rm -rf "$out/mail"
mkdir -p "$out/mail"
/usr/bin/python3 Tests/python/smtp_sink.py "$out/mail" --tls "$out/cert.pem" "$out/key.pem" \
    --auth bench:bench-password > "$out/sink.out" 2> /dev/null &
sink_pid=$!
trap 'kill -9 $unbound_pid $sink_pid 2> /dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening "$out/sink.out" 2> /dev/null && break; sleep 0.1; done
smtp=$(awk '{print $2}' "$out/sink.out")
sleep 0.5

