# Sourced by the EWS and presence benchmarks: builds tandem and one benchmark example, then
# starts `tandem up` on free loopback ports in a fresh directory and waits until it answers.
#
#   start_bench_tandem PROFILE EXAMPLE     (PROFILE: release or debug)
#
# Sets: bin_dir (the profile's target folder), work (the data's parent), port (Mailbox HTTPS),
# pid; stops tandem and removes the folder on exit. Demo password: bench-password-1.

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_bench_tandem() {
  local profile=$1 example=$2 flag=--release
  [ "$profile" = debug ] && flag=
  # Two builds: target selection (--example) would otherwise leave the tandem binary unbuilt.
  cargo build $flag --locked -p tandem
  cargo build $flag --locked -p tandem-mailbox --example "$example"
  bin_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/$profile
  work=$(mktemp -d)
  port=$(free_port)
  local fport sport tport
  fport=$(free_port); sport=$(free_port); tport=$(free_port)
  cat > "$work/tandem.toml" <<TOML
[deployment]
domain = "litwareinc.com"
data_dir = "$work/data"

[mailbox]
https_listen = "127.0.0.1:$port"

[frontend]
https_listen = "127.0.0.1:$fport"
sip_udp_listen = "127.0.0.1:$sport"
sip_tcp_listen = "127.0.0.1:$sport"
sip_tls_listen = "127.0.0.1:$tport"
TOML
  TANDEM_DEMO_PASSWORD=bench-password-1 "$bin_dir/tandem" --log-format json up --config "$work/tandem.toml" \
    >"$work/tandem.out" 2>"$work/tandem.err" &
  pid=$!
  trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
  until "$bin_dir/tandem" status --data-dir "$work/data" --json >/dev/null 2>&1; do
    kill -0 $pid 2>/dev/null || { cat "$work/tandem.err" >&2; exit 1; }
    sleep 0.1
  done
}
