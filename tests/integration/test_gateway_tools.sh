#!/usr/bin/env bash
# test_gateway_tools.sh -- the tools behind the gateway's scopes: tool.webhook delivers a
# signed POST that a receiver in this test verifies (and a receiver with another secret
# refuses), tool.json_extract feeds one field to the next step, a redirect from the receiver
# to a private address is refused, tool.webhook needs tools:http, and the signing secret
# appears in no log, reply or event; per-tool rate limits per tenant refuse, hint and recover.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
W=$(mktemp -d /tmp/phx-webhook.XXXXXX)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$W/secret"
cp "$W/secret" "$W/recv_secret"
cat >"$W/receiver.py" <<'PYEOF'
# receiver.py DIR: an HTTP server on a free port (written to DIR/port) that checks
# X-Phx-Signature against DIR/recv_secret (its own copy) and appends each verified body to DIR/received.
import hashlib, hmac, http.server, sys, time
d = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        # /hop redirects to the same server under another name (see the allow-list section)
        if self.path == "/hop":
            self.send_response(302)
            self.send_header("Location", "http://localhost:%d/final" % self.server.server_port)
            self.end_headers(); return
        self.send_response(200); self.end_headers(); self.wfile.write(b"final")
    def do_POST(self):
        if self.path == "/redirect":
            self.send_response(302); self.send_header("Location", "http://169.254.169.254/latest/")
            self.end_headers(); return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ts = self.headers.get("X-Phx-Timestamp", "")
        sig = self.headers.get("X-Phx-Signature", "")
        secret = open(d + "/recv_secret").read().strip().encode()
        want = "v1=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        fresh = ts.isdigit() and abs(time.time() - int(ts)) < 300
        ok = hmac.compare_digest(sig, want) and fresh
        if ok:
            with open(d + "/received", "ab") as f:
                f.write(body + b"\n")
        self.send_response(200 if ok else 401); self.end_headers()
        self.wfile.write(b'{"verified": true}' if ok else b'{"verified": false}')
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(d + "/port", "w").write(str(s.server_port))
s.serve_forever()
PYEOF
export PHX_STACK_POOLS="planner tools"
# No phx-safety in this stack: safety gates (docs/safety.md) are tested in test_safety_gates.sh.
export PHX_SAFETY_GATES=false
# ::1 too: "localhost" may resolve to it first (the receiver listens on 127.0.0.1 only).
export PHX_WEBHOOK_SECRET_FILE=$W/secret PHX_FETCH_ALLOW_CIDRS=127.0.0.1/32,::1/128
# Section 5a: burst 5 is above the 4 json_extract calls tenant default makes in this test.
export PHX_TOOL_RATES=tool.json_extract=0.2/5
stack_up
# The receiver starts after the stack, so a failed stack_up leaves no process behind.
"$PY" "$W/receiver.py" "$W" &
RECV=$!
trap 'kill $RECV 2>/dev/null; rm -rf "$W"; stack_cleanup' EXIT
for _ in $(seq 50); do [ -s "$W/port" ] && break; sleep 0.1; done
RPORT=$(cat "$W/port")
T=$PHX_VAR/tools
mkdir -p "$T"
A="Authorization: Bearer $PHX_API_KEY"
READ_ONLY_TOOLS=$("$PHX" keys create --tenant default --principal calc-only --roles jobs:submit,jobs:read 2>/dev/null)
submit() { api POST /v1/jobs "$1" -H "${2:-$A}" | cut -d' ' -f2- | jq -r .job_id; }

# --- 1. a signed webhook, verified by the receiver, fed by json_extract ---------------------
jq -cn --arg u "http://127.0.0.1:$RPORT/hook" '{steps: [
  {id:"sum", kind:"tool.calc", input:{expr:"40+2"}},
  {id:"pick", kind:"tool.json_extract", needs:["sum"],
   input:{doc:{report:{total:"{{steps.sum.output.value}}", ok:true}}, pointer:"/report"}},
  {id:"send", kind:"tool.webhook", needs:["pick"],
   input:{url:$u, payload:{event:"done", total:"{{steps.sum.output.value}}"}}}]}' >"$T/hook.json"
id=$(submit "$T/hook.json")
r=$(reply "$id" 60) # the first job also waits for the consumer groups to form
check "webhook: job succeeded" succeeded "$(jq -r .status <<<"$r")"
check "webhook: receiver verified the signature" true "$(jq -r .outputs.send.body <<<"$r" | jq -r .verified)"
check "webhook: body as sent" '{"event":"done","total":42}' "$(head -1 "$W/received" 2>/dev/null)"
check "json_extract: the object at the pointer" '{"ok":true,"total":42}' "$(jq -cS .outputs.pick.value <<<"$r")"

# --- 2. a receiver with another secret refuses; the step fails for good -------------------
echo "rotated-on-the-receiver-only-0123456789" >"$W/recv_secret"
id=$(submit "$T/hook.json")
r=$(reply "$id")
check "webhook: wrong secret -> failed" failed "$(jq -r .status <<<"$r")"
check "webhook: rejected, not retried" "webhook_rejected 1" "$(jq -r '"\(.steps.send.error.code) \(.steps.send.attempts)"' <<<"$r")"
cp "$W/secret" "$W/recv_secret"

# --- 3. SSRF: a redirect to a private address, and a private address itself ---------------
jq -cn --arg u "http://127.0.0.1:$RPORT/redirect" '{steps: [{id:"send", kind:"tool.webhook", input:{url:$u, payload:{}}}]}' >"$T/redir.json"
check "webhook: redirect to a private address refused" forbidden_address "$(reply "$(submit "$T/redir.json")" | jq -r .steps.send.error.code)"
jq -cn '{steps: [{id:"send", kind:"tool.webhook", input:{url:"http://10.1.2.3/hook", payload:{}}}]}' >"$T/priv.json"
check "webhook: private address refused" forbidden_address "$(reply "$(submit "$T/priv.json")" | jq -r .steps.send.error.code)"

# --- 4. scopes: webhook needs tools:http; json_extract does not ----------------------------
check "scope: webhook refused without tools:http" 403 "$(api POST /v1/jobs "$T/hook.json" -H "Authorization: Bearer $READ_ONLY_TOOLS" | cut -d' ' -f1)"
jq -cn '{steps: [{id:"p", kind:"tool.json_extract", input:{doc:{a:[1,2]}, pointer:"/a/1"}}]}' >"$T/jx.json"
id=$(submit "$T/jx.json" "Authorization: Bearer $READ_ONLY_TOOLS")
check "scope: json_extract allowed with jobs:submit only" 2 "$(reply "$id" | jq -r .outputs.p.value)"

# --- 5. per-tenant host allow-lists and usage accounting -----------------------------------
HOSTED=$("$PHX" keys create --tenant hosted --principal h --roles submitter 2>/dev/null)
redis sadd phx:tenant:hosted:allow_hosts .example.org >/dev/null
r=$(reply "$(submit "$T/hook.json" "Authorization: Bearer $HOSTED")")
check "allow-list: host not listed -> forbidden_host" forbidden_host "$(jq -r .steps.send.error.code <<<"$r")"
redis sadd phx:tenant:hosted:allow_hosts 127.0.0.1 >/dev/null
r=$(reply "$(submit "$T/hook.json" "Authorization: Bearer $HOSTED")")
check "allow-list: listed host delivered" succeeded "$(jq -r .status <<<"$r")"
# A listed host cannot redirect the fetch to an unlisted one (here: the same server, named
# localhost, which the list does not hold); a tenant without a list follows it.
jq -cn --arg u "http://127.0.0.1:$RPORT/hop" '{steps: [{id:"f", kind:"tool.http_fetch", input:{url:$u}}]}' >"$T/hop.json"
r=$(reply "$(submit "$T/hop.json" "Authorization: Bearer $HOSTED")")
check "allow-list: redirect to an unlisted host -> forbidden_host" forbidden_host "$(jq -r .steps.f.error.code <<<"$r")"
r=$(reply "$(submit "$T/hop.json")")
check "allow-list: no list, redirect followed" "200 final" "$(jq -r '"\(.outputs.f.status) \(.outputs.f.body)"' <<<"$r")"
check "allow-list: other tenants have no list" succeeded "$(reply "$(submit "$T/hook.json")" | jq -r .status)"
u=phx:usage:{hosted}:$(date -u +%Y%m%d)
# Counts reach Redis within PHX_TOOLS_USAGE_FLUSH_MS (100 ms; workers/tools/usage.h): wait up
# to 5 s for hash $1 field $2 to read $3 (or, with $3 "+", anything), then print it.
usage_wait() {
    local v
    for _ in $(seq 50); do
        v=$(redis hget "$1" "$2")
        [ "$v" = "$3" ] || { [ "$3" = + ] && [ -n "$v" ]; } && break
        sleep 0.1
    done
    echo "$v"
}
check "usage: webhook calls counted" 1 "$(usage_wait "$u" tool.webhook:calls 1)"
check "usage: webhook errors counted" 1 "$(redis hget "$u" tool.webhook:errors)"
check "usage: bytes counted" 1 "$(( $(redis hget "$u" tool.webhook:bytes) > 0 ))"
check "usage: calc counted" 2 "$(usage_wait "$u" tool.calc:calls 2)"
curl -s "http://127.0.0.1:$(cat "$PHX_VAR/run/tools.admin")/metrics" >"$T/metrics"
check "usage: metric" 1 "$(grep -c '^phx_tool_calls_total{kind="tool.webhook",outcome="ok",tenant="hosted"} 1$' "$T/metrics")"

# --- 5a. per-tool rate limits per tenant (workers/tools/tenancy.h) ---------------------------
# The pool limits tool.json_extract by default (PHX_TOOL_RATES above); tenant "metered" gets
# its own limit for tool.calc, a kind the pool does not limit, through its conf hash.
METERED=$("$PHX" keys create --tenant metered --principal m --roles submitter 2>/dev/null)
redis hset 'phx:rl:{metered}:conf' tool.calc:per_s 1 tool.calc:burst 2 >/dev/null
sleep 1.1 # a thread that saw the tenant without a limit re-reads its conf hash within 1 s
steps() { # steps N MAX_ATTEMPTS KIND: N independent steps of KIND
    jq -cn --argjson n "$1" --argjson m "$2" --arg k "$3" '[range($n)] | {steps: map({id: "c\(.)", kind: $k,
      input: (if $k == "tool.calc" then {expr: "\(.)+1"} else {doc: {v: .}, pointer: "/v"} end),
      retry: {max_attempts: $m, backoff_ms: 10}})}'
}
steps 3 1 tool.calc >"$T/rl1.json"
r=$(reply "$(submit "$T/rl1.json" "Authorization: Bearer $METERED")")
check "tool rate: burst of 2 runs, the third call is refused" "ok ok rate_limited" \
    "$(jq -r '[.steps[] | if .error then .error.code else "ok" end] | sort | join(" ")' <<<"$r")"
check "tool rate: refusal is retryable with a hint" "true 1" \
    "$(jq -r '.steps[] | select(.error) | "\(.error.retryable) \(.error.retry_after_ms > 0 | if . then 1 else 0 end)"' <<<"$r")"
# With attempts to spare, the refused steps wait for room (retry_after_ms) and all succeed.
steps 3 6 tool.calc >"$T/rl4.json"
r=$(reply "$(submit "$T/rl4.json" "Authorization: Bearer $METERED")" 60)
check "tool rate: retried after the hint, job succeeds" succeeded "$(jq -r .status <<<"$r")"
check "tool rate: other tenants are not limited" succeeded "$(reply "$(submit "$T/rl1.json")" | jq -r .status)"
steps 6 1 tool.json_extract >"$T/rl-jx.json"
r=$(reply "$(submit "$T/rl-jx.json" "Authorization: Bearer $METERED")")
check "tool rate: the pool default (burst 5) applies where the tenant sets none" 1 \
    "$(jq -r '[.steps[] | select(.error.code == "rate_limited")] | length' <<<"$r")"
check "tool rate: limited calls counted" 1 "$(( $(usage_wait "phx:usage:{metered}:$(date -u +%Y%m%d)" tool.calc:limited +) >= 1 ))"
curl -s "http://127.0.0.1:$(cat "$PHX_VAR/run/tools.admin")/metrics" >"$T/metrics"
check "tool rate: metric" 1 "$(grep -c '^phx_tool_calls_total{kind="tool.calc",outcome="rate_limited",tenant="metered"} ' "$T/metrics")"

# --- 5b. pools re-check the scope a task carries (a task put straight on the topic) -------
# name | scopes JSON (or "none") | expected error code on phx.results ("" = ran)
while IFS='|' read -r name scopes want; do
    [ -z "$name" ] && continue
    jid=$(uid forged)
    jq -cn --arg j "$jid" --argjson sc "$scopes" \
        '{schema:"task.v1",job_id:$j,step_id:"f",attempt:1,kind:"tool.http_fetch",tenant:"default",
          input:{url:"http://169.254.169.254/"}} + (if $sc == null then {} else {scopes:$sc} end)' |
        kafka_put phx.tasks.tools "$jid"
    res=$(kafka_get phx.results "$jid" 20 | head -n1)
    check "task scopes: $name" "$want" "$(jq -r '.error.code // ""' <<<"$res")"
done <<'EOF2'
no scopes: refused|null|forbidden
scopes without tools:http: refused|["jobs:submit","llm:use"]|forbidden
tools:http: runs (and meets the address check)|["jobs:submit","tools:http"]|forbidden_address
admin: runs|["admin"]|forbidden_address
EOF2

# --- 6. the signing secret never leaves the pool ------------------------------------------
sec=$(cat "$W/secret")
check "secret: not in any log" 0 "$(cat "$PHX_VAR"/log/*.log | grep -c -F "$sec")"
check "secret: not in replies or events" 0 "$(kcat -C -b "$KAFKA" -t phx.replies -t phx.events -o beginning -e -q 2>/dev/null | grep -c -F "$sec")"
exit "$((T_FAIL > 0))"
