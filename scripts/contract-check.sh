#!/usr/bin/env bash
# Fuzzes the running server against its own OpenAPI document with schemathesis: no request may
# crash it or get a 5xx, and every response must match the documented status codes, headers,
# content type and schemas. Starts the debug build (already built by `cargo test`, and with
# overflow checks on) on a temporary data file and port.
#
#   scripts/contract-check.sh [max examples per operation, default 100]
#
# Needs python3 with venv; schemathesis is installed into target/contract-venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

examples="${1:-100}"
venv=target/contract-venv
if [[ ! -x "$venv/bin/schemathesis" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
fi

cargo build --locked --quiet
bin=target/debug/leadbase
work=$(mktemp -d)
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

export LEADBASE_STORAGE_PATH="$work/leadbase.redb"
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
tenant=$("$bin" tenant create --name contract | json_field "['tenant']['id']")
token=$("$bin" key issue --tenant "$tenant" --name contract \
    --scopes public_api:leads:read,public_api:leads:write,public_api:webhooks:manage |
    json_field "['token']")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Limits high enough that the fuzzer measures the API, not the rate limiter; loopback allowed
# over http so that a real webhook (pointing at a closed port) can exist.
port=$(free_port)
LEADBASE_SERVER_LISTEN="127.0.0.1:$port" \
LEADBASE_LIMITS_PER_MINUTE=1000000 LEADBASE_LIMITS_PER_HOUR=10000000 \
LEADBASE_LIMITS_BULK_PER_MINUTE=1000000 LEADBASE_LIMITS_UNAUTHENTICATED_PER_MINUTE=1000000 \
LEADBASE_WEBHOOKS_HTTPS_ONLY=false LEADBASE_WEBHOOKS_ALLOWED_PRIVATE_CIDRS=127.0.0.0/8 \
LEADBASE_WEBHOOKS_RETRY_SCHEDULE_SECONDS=1 \
    "$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do
    curl -fs "$base/healthz" >/dev/null && break
    sleep 0.1
done

# A webhook with a delivery, so that the `{id}` and `{delivery_id}` operations reach real data.
api() {
    curl -fsS -X "$1" "$base$2" -H "Authorization: Bearer $token" -H "x-customer-id: $tenant" \
        -H 'Content-Type: application/json' ${3:+-d "$3"}
}
webhook=$(api POST /api/agents/crm/lead-webhooks \
    "{\"url\": \"http://127.0.0.1:$(free_port)/closed\", \"event_types\": [\"lead.created\", \"lead.updated\"]}" |
    json_field "['webhook']['id']")
delivery=$(api POST "/api/agents/crm/lead-webhooks/$webhook/test" | json_field "['delivery_id']")
# DELETE gets a webhook of its own, so that deleting it leaves the first for the other operations.
doomed=$(api POST /api/agents/crm/lead-webhooks \
    "{\"url\": \"http://127.0.0.1:$(free_port)/doomed\"}" | json_field "['webhook']['id']")
api POST /api/agents/crm/leads '{"contact_name": "Contract Check", "contact_email": "cc@example.com"}' >/dev/null
cat >"$work/schemathesis.toml" <<TOML
[[operations]]
include-path-regex = "^/api/agents/crm/lead-webhooks/"
exclude-method = "DELETE"
parameters = { "path.id" = "$webhook", "path.delivery_id" = "$delivery" }

[[operations]]
include-path-regex = "^/api/agents/crm/lead-webhooks/"
include-method = "DELETE"
parameters = { "path.id" = "$doomed" }
TOML

status=0
"$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$base/openapi.json" --url "$base" \
    --header "Authorization: Bearer $token" --header "x-customer-id: $tenant" \
    --max-examples "$examples" --seed 1 --no-color \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,missing_required_header,ignored_auth,unsupported_method,use_after_free,ensure_resource_availability \
    || status=$?
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "the server died during the run; its log ends with:" >&2
    tail -n 40 "$work/server.log" >&2
    status=1
fi
exit "$status"
