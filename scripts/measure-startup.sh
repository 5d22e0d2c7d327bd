#!/usr/bin/env bash
# Startup time to first /healthz 200, and idle RSS, of the release binary.
set -eu
BIN=${1:-target/release/leadbase}
DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# Starts the server on $DIR and prints the milliseconds until /healthz answers; sets PID.
start_server() {
    local start end
    start=$(date +%s%N)
    "$BIN" serve --listen 127.0.0.1:$PORT --set storage.path=$DIR/leadbase.redb >/dev/null 2>&1 &
    PID=$!
    until curl -sf -o /dev/null http://127.0.0.1:$PORT/healthz; do sleep 0.002; done
    end=$(date +%s%N)
    echo $(( (end - start) / 1000000 ))
}

start_server >"$DIR/ms"
echo "first start (creates file + admin token): $(cat "$DIR/ms") ms to first /healthz 200"
sleep 3
echo "idle RSS after 3 s: $(awk '/VmRSS/{print $2/1024 " MiB"}' /proc/$PID/status)"
kill -TERM $PID; wait $PID || true
start_server >"$DIR/ms"
echo "restart on existing file: $(cat "$DIR/ms") ms to first /healthz 200"
kill -TERM $PID; wait $PID || true
rm -rf "$DIR"
