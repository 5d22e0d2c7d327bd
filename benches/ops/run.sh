#!/usr/bin/env bash
# Operations at scale (issues 13 and 16): N leads (default 1,000,000) written through an older
# build's API (OLD, a schema-6 binary), then this build (NEW): the migration at open, a backup
# through the running server and one offline, and `leadbase check` of the snapshot. Prints each
# figure; uses 127.0.0.1:18080-18081 and $WORK (default /tmp/leadbase-ops).
#
#   OLD=/path/to/leadbase-adcaf2b NEW=target/release/leadbase benches/ops/run.sh
set -euo pipefail
OLD=${OLD:?set OLD to a schema-6 leadbase binary} NEW=${NEW:-target/release/leadbase}
WORK=${WORK:-/tmp/leadbase-ops}; mkdir -p "$WORK"
HERE=$(cd "$(dirname "$0")" && pwd)
trap "pkill -f \"serve --set storage.path=$WORK\" || true" EXIT
D=$WORK/data; rm -rf $D $WORK/online.redb $WORK/offline.redb; mkdir -p $D
LIM="--set limits.per_minute=2147483647 --set limits.per_hour=2147483647 --set limits.bulk_per_minute=2147483647"
$OLD serve --set storage.path=$D/leadbase.redb $LIM --listen 127.0.0.1:18080 > $WORK/old.log 2>&1 &
pid=$!; sleep 1.5
T=$(cat $D/admin-token); A="Authorization: Bearer $T"; J='Content-Type: application/json'
tenant=$(curl -sf -X POST http://127.0.0.1:18080/admin/api/tenants -H "$A" -H "$J" -d '{"name":"Big"}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["tenant"]["id"])')
token=$(curl -sf -X POST http://127.0.0.1:18080/admin/api/tenants/$tenant/keys -H "$A" -H "$J" -d '{"name":"k","scopes":["public_api:leads:read","public_api:leads:write"]}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["token"])')
/usr/bin/time -f "load %e s" python3 $HERE/load.py http://127.0.0.1:18080 $token $tenant ${N:-1000000}
kill -TERM $pid; wait $pid || true
echo "schema-6 file: $(du -m $D/leadbase.redb | cut -f1) MiB"
# Migration at open: time from start to the banner.
start=$(date +%s.%N)
$NEW serve --set storage.path=$D/leadbase.redb $LIM --listen 127.0.0.1:18081 > $WORK/new.log 2>$WORK/new.err &
pid=$!
while ! grep -q listening $WORK/new.log 2>/dev/null; do sleep 0.2; done
echo "migration to schema 7 at open: $(python3 -c "print(round($(date +%s.%N)-$start,1))") s"
grep -i "migrated\|indexing" $WORK/new.err | tail -3
echo "file after migration: $(du -m $D/leadbase.redb | cut -f1) MiB"
curl -sf "http://127.0.0.1:18081/api/agents/crm/leads?limit=1&status=active" -H "Authorization: Bearer $token" -H "x-customer-id: $tenant" | python3 -c 'import sys,json;print("status=active total", json.load(sys.stdin)["total"])'
# Online backup through the server (CLI), while it serves.
/usr/bin/time -f "online backup (leadbase backup, through the server) %e s, max RSS of the CLI %M KiB" $NEW backup --to $WORK/online.redb --set storage.path=$D/leadbase.redb --set server.listen=127.0.0.1:18081
echo "server RSS after the backup: $(grep VmHWM /proc/$pid/status)"
kill -TERM $pid; wait $pid || true
ls -la $WORK/online.redb
/usr/bin/time -f "offline backup %e s" $NEW backup --to $WORK/offline.redb --set storage.path=$D/leadbase.redb
/usr/bin/time -f "check %e s, max RSS %M KiB" $NEW check --set storage.path=$WORK/online.redb | tail -4
