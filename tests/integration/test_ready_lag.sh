#!/usr/bin/env bash
# test_ready_lag.sh -- /readyz "lag below a bound": a tools pool with one consumer thread,
# PHX_READY_MAX_LAG=3 and statistics every 200 ms is given 8 fetches of a page that takes 2 s
# (published straight to phx.tasks.tools in one batch, so the backlog depends neither on how
# fast we submit nor on how fast the planner dispatches);
# while its backlog is above 3 it answers 503 with a JSON reason naming the lag and the bound
# (the ops page shows the same reason), and once it has caught up it is ready again.
. "$(dirname "$0")/lib.sh"
W=$(mktemp -d /tmp/phx-readylag.XXXXXX)
cat >"$W/slow.py" <<'PYEOF'
# slow.py DIR: an HTTP server on a free port (written to DIR/port) whose every answer takes 2 s.
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(2)
        self.send_response(200); self.end_headers(); self.wfile.write(b"slow")
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + "/port", "w").write(str(s.server_port))
s.serve_forever()
PYEOF
export PHX_STACK_POOLS="tools" PHX_SAFETY_GATES=false PHX_FETCH_ALLOW_CIDRS=127.0.0.1/32
export PHX_CONCURRENCY=1 PHX_READY_MAX_LAG=3 PHX_KAFKA_CONF_statistics_interval_ms=200
stack_up
/usr/bin/python3 "$W/slow.py" "$W" &
SLOW=$!
trap 'kill $SLOW 2>/dev/null; rm -rf "$W"; stack_cleanup' EXIT
for _ in $(seq 50); do [ -s "$W/port" ] && break; sleep 0.1; done
TOOLS=http://127.0.0.1:$(cat "$PHX_VAR/run/tools.admin")
check "ready before any backlog" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$TOOLS/readyz")"

url="http://127.0.0.1:$(cat "$W/port")/"
ids=()
for i in $(seq 8); do ids+=("$(uid lag$i)"); done
for id in "${ids[@]}"; do
    printf '%s\t%s\n' "$id" "$(jq -cn --arg id "$id" --arg u "$url" '{schema:"task.v1", job_id:$id,
        step_id:"f", attempt:1, kind:"tool.http_fetch", input:{url:$u}, tenant:"default",
        scopes:["tools:http"], timeout_ms:60000}')"
done | kcat -P -b "$KAFKA" -t phx.tasks.tools -K '\t' 2>/dev/null

# Not ready while the backlog is above the bound, with the reason in the body.
body="" code="" end=$((SECONDS + 30))
while [ $SECONDS -lt $end ]; do
    body=$(curl -s -w '\n%{http_code}' "$TOOLS/readyz")
    code=$(tail -n1 <<<"$body")
    [ "$code" = 503 ] && break
    sleep 0.1
done
check "not ready while lagging" 503 "$code"
reason=$(head -n -1 <<<"$body" | jq -r .reason 2>/dev/null)
check_contains "reason names the lag" "consumer lag" "$reason"
check_contains "reason names the bound" "PHX_READY_MAX_LAG=3" "$reason"
ov=$(curl -s -H "Authorization: Bearer $PHX_API_KEY" "$PHX_INGRESS_URL/v1/ops/overview")
end=$((SECONDS + 10))
while [ $SECONDS -lt $end ]; do # the heartbeat carries the reason within its 2 s interval
    grep -q "PHX_READY_MAX_LAG" <<<"$ov" && break
    sleep 0.2
    ov=$(curl -s -H "Authorization: Bearer $PHX_API_KEY" "$PHX_INGRESS_URL/v1/ops/overview")
done
check_contains "the ops API shows the same reason" "PHX_READY_MAX_LAG=3" \
    "$(jq -r '.pools[] | select(.pool == "phx-tools") | .instances[0].reason' <<<"$ov")"

# Ready again once the backlog is worked off.
check "the last task is still done" ok "$(kafka_get phx.results "${ids[7]}" 60 | head -n1 | jq -r .status)"
end=$((SECONDS + 15))
while [ $SECONDS -lt $end ]; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$TOOLS/readyz")
    [ "$code" = 200 ] && break
    sleep 0.1
done
check "ready again after catching up" 200 "$code"

# A replica that has not joined its consumer group yet consumes nothing: not ready, saying so,
# until its first assignment (a few seconds: the group rebalances to let it in).
port=$("$PHX_BIN/phx-freeport" 1)
PHX_ADMIN_ADDR=127.0.0.1:$port "$PHX_BIN/phx-tools" >"$PHX_VAR/log/tools-extra.log" 2>&1 &
EXTRA=$!
reasons="" code="" end=$((SECONDS + 60))
while [ $SECONDS -lt $end ]; do
    body=$(curl -s -m 2 -w '\n%{http_code}' "http://127.0.0.1:$port/readyz" || true)
    code=$(tail -n1 <<<"$body")
    [ "$code" = 503 ] && reasons+="$(head -n -1 <<<"$body" | jq -r .reason 2>/dev/null); "
    [ "$code" = 200 ] && break
    sleep 0.05
done
check_contains "a new replica: not ready before it joins its group" \
    "not yet a member of consumer group phx-tools" "$reasons"
check "a new replica: ready once it has an assignment" 200 "$code"
kill -TERM "$EXTRA"
wait "$EXTRA"
exit "$((T_FAIL > 0))"
