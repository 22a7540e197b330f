#!/usr/bin/env bash
# test_exec_contract.sh -- the exec.run step contract through the real pipeline.
#
# A program that fails is a successful step carrying its exit code; invalid input fails the
# step at once without a retry (invalid_input, not retryable); limits above the pool's
# maximums are capped; the output has exactly the fields of the contract. Also the examples
# (examples/exec-*.json) through `phx submit --wait`. Needs root, skips otherwise.
. "$(dirname "$0")/../integration/lib.sh"
if [ "$(id -u)" != 0 ]; then
    echo "# SKIPPED: the exec sandbox needs root (see docs/security.md)"
    exit 0
fi
[ -x "$PHX_BIN/phx-exec" ] || { not_ok "phx-exec built" "$PHX_BIN/phx-exec missing"; exit 1; }
export PHX_STACK_POOLS="planner exec"
# No phx-safety in this stack: safety gates (docs/safety.md) are tested in test_safety_gates.sh.
export PHX_SAFETY_GATES=false
# Small maximums, so capping is observable (the wall cap leaves a cancel below time to land
# on a loaded machine before the cap would kill its program).
export PHX_EXEC_MAX_OUTPUT_KB=8 PHX_EXEC_MAX_WALL_MS=8000
stack_up
trap 'stack_cleanup || exit 1' EXIT

# --- 1. table: input -> status, and a jq check on the reply -------------------------------
# name | exec.run input | status | jq expression over the reply that must print "true"
NAMES=()
declare -A JOB WANT EXPR
while IFS='|' read -r name input want expr; do
    [ -z "$name" ] && continue
    id=$(uid ct)
    NAMES+=("$name")
    JOB[$name]=$id
    WANT[$name]=$want
    EXPR[$name]=$expr
    job "$id" "[{\"id\":\"x\",\"kind\":\"exec.run\",\"input\":$input,\"retry\":{\"max_attempts\":3,\"backoff_ms\":50}}]" |
        kafka_put phx.jobs "$id"
done <<'EOF'
output fields exactly|{"lang":"sh","code":"echo hi"}|succeeded|(.outputs.x | keys) == ["cpu_ms","duration_ms","exit_code","max_rss_kb","oom_killed","signal","stderr","stdout","timed_out","truncated"]
stdout and exit 0|{"lang":"python","code":"print(6*7)"}|succeeded|.outputs.x.stdout == "42\n" and .outputs.x.exit_code == 0 and .outputs.x.signal == null
failing program is a successful step|{"lang":"sh","code":"echo oops >&2; exit 3"}|succeeded|.outputs.x.exit_code == 3 and .outputs.x.stderr == "oops\n" and .steps.x.attempts == 1
python exception exits 1|{"lang":"python","code":"raise SystemExit(1/0)"}|succeeded|.outputs.x.exit_code == 1 and (.outputs.x.stderr | test("ZeroDivisionError"))
crash is reported as a signal|{"lang":"python","code":"import ctypes; ctypes.string_at(0)"}|succeeded|.outputs.x.signal == "SIGSEGV" and .outputs.x.exit_code == 139
stdin is delivered|{"lang":"python","code":"import sys; print(sys.stdin.read().upper())","stdin":"abc"}|succeeded|.outputs.x.stdout == "ABC\n"
files land in the work dir|{"lang":"sh","code":"pwd; cat a.txt b.py; python3 b.py","files":{"a.txt":"A\n","b.py":"print('B')\n"}}|succeeded|.outputs.x.stdout == "/work\nA\nprint('B')\nB\n"
modules import from files|{"lang":"python","code":"import helper; print(helper.f())","files":{"helper.py":"def f(): return 'from helper'\n"}}|succeeded|.outputs.x.stdout == "from helper\n"
binary output is scrubbed|{"lang":"sh","code":"printf 'a\\000b\\377c'"}|succeeded|.outputs.x.stdout == "a?b?c"
output cap is the pool maximum|{"lang":"python","code":"print('x' * 100000)","limits":{"output_kb":1000}}|succeeded|.outputs.x.truncated == true and (.outputs.x.stdout | length) == 8192
wall limit is capped by the pool|{"lang":"sh","code":"sleep 40","limits":{"wall_ms":600000}}|succeeded|.outputs.x.timed_out == true and .outputs.x.duration_ms < 20000
unknown lang|{"lang":"ruby","code":"puts 1"}|failed|.steps.x.error.code == "invalid_input" and .steps.x.attempts == 1
missing code|{"lang":"python"}|failed|.steps.x.error.code == "invalid_input" and .steps.x.attempts == 1
code not a string|{"lang":"sh","code":42}|failed|.steps.x.error.code == "invalid_input"
unknown field|{"lang":"sh","code":"true","limit":{"wall_ms":1}}|failed|.steps.x.error.code == "invalid_input" and (.steps.x.error.message | test("limit"))
unknown limit|{"lang":"sh","code":"true","limits":{"gpu":1}}|failed|.steps.x.error.code == "invalid_input"
negative limit|{"lang":"sh","code":"true","limits":{"wall_ms":-5}}|failed|.steps.x.error.code == "invalid_input"
path traversal in a file name|{"lang":"sh","code":"true","files":{"../etc/passwd":"x"}}|failed|.steps.x.error.code == "invalid_input" and .steps.x.attempts == 1
slash in a file name|{"lang":"sh","code":"true","files":{"a/b":"x"}}|failed|.steps.x.error.code == "invalid_input"
hidden file name|{"lang":"sh","code":"true","files":{".bashrc":"x"}}|failed|.steps.x.error.code == "invalid_input"
file content not a string|{"lang":"sh","code":"true","files":{"a":1}}|failed|.steps.x.error.code == "invalid_input"
files larger than the disk|{"lang":"sh","code":"true","files":{"a":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},"limits":{"disk_mb":1}}|succeeded|.outputs.x.exit_code == 0
EOF

for name in "${NAMES[@]}"; do
    r=$(reply "${JOB[$name]}" 60)
    check "contract $name: status" "${WANT[$name]}" "$(jq -r .status <<<"$r")"
    [ -z "$r" ] || [ "$(jq -r .status <<<"$r")" = "${WANT[$name]}" ] ||
        echo "# $name: ${JOB[$name]} steps $(jq -c .steps <<<"$r" | cut -c1-400)"
    check "contract $name: ${EXPR[$name]}" true "$(jq -r "${EXPR[$name]}" <<<"$r" 2>&1)"
done

# --- 2. the examples, as a new user would run them -----------------------------------------
out=$("$PHX" submit "$ROOT/examples/exec-python.json" --wait --timeout 60)
check "example exec-python: exit 0" 0 $?
check "example exec-python: result" '{"mean":3.875,"stdev":2.748,"words":9}' \
    "$(jq -c '.outputs.stats.stdout | fromjson' <<<"$out")"
check "example exec-python: templated step" "previous step exited with 0
phx-sandbox" "$(jq -r '.outputs.check.stdout' <<<"$out" | head -c 200 | sed '$!N;s/\n$//')"
out=$("$PHX" submit "$ROOT/examples/exec-sh.json" --wait --timeout 60)
check "example exec-sh: succeeded with exit code 3" "3 false" \
    "$(jq -r '"\(.outputs.pipeline.exit_code) \(.outputs.pipeline.truncated)"' <<<"$out")"
check "example exec-sh: stdout" "      3 red" "$(jq -r '.outputs.pipeline.stdout' <<<"$out" | head -n1)"

# --- 2b. cancel kills a running program (DELETE /v1/jobs/ID) --------------------------------
jq -cn '{steps: [{id:"x",kind:"exec.run",timeout_ms:90000,
                  input:{lang:"sh",code:"sleep 40; echo finished",limits:{wall_ms:50000}}}]}' >"$PHX_VAR/slow-exec.json"
r=$(api POST /v1/jobs "$PHX_VAR/slow-exec.json" -H "Authorization: Bearer $PHX_API_KEY")
cid=$(cut -d' ' -f2- <<<"$r" | jq -r .job_id)
for _ in $(seq 100); do [ "$(redis hget "phx:job:{$cid}:steps" x)" = dispatched ] && break; sleep 0.1; done
sleep 1 # let the sandbox start the program
check "cancel exec: 202" 202 "$(api DELETE "/v1/jobs/$cid" '' -H "Authorization: Bearer $PHX_API_KEY" | cut -d' ' -f1)"
res=$(kafka_get phx.results "$cid" 20 | head -n1)
check "cancel exec: the run was killed as cancelled" "true SIGKILL" \
    "$(jq -r '"\(.output.cancelled) \(.output.signal)"' <<<"$res")"
check "cancel exec: killed long before its 40 s" 1 "$(jq -r '.output.duration_ms < 15000' <<<"$res" | grep -c true)"
check "cancel exec: reply cancelled" cancelled "$(reply "$cid" 20 | jq -r .status)"

# --- 3. metrics ----------------------------------------------------------------------------
m=$(curl -s "http://127.0.0.1:$(cat "$PHX_VAR/run/exec.admin")/metrics")
check_contains "metrics: exec.run steps counted" 'phx_steps_total{kind="exec.run",outcome="ok"}' "$m"

# --- 4. a worker killed -9 leaves nothing behind -------------------------------------------
# Sandboxes being set up or running die with their worker (PR_SET_PDEATHSIG, and a setup
# child reads its dead parent as EOF): none may linger holding the worker's fds -- once one
# did, holding the admin port, and the restarted worker could not bind it.
for i in 1 2 3 4 5 6; do
    id=$(uid kill9)
    job "$id" '[{"id":"x","kind":"exec.run","input":{"lang":"sh","code":"sleep 41.25"}}]' |
        kafka_put phx.jobs "$id"
done
for _ in $(seq 100); do [ "$(redis hget "phx:job:{$id}:steps" x)" = dispatched ] && break; sleep 0.1; done
sleep 0.3
epid=$(cat "$PHX_VAR/run/exec.pid")
kids=$(ps -e -o pid=,ppid= | awk -v p="$epid" '$2 == p { print $1 }')
check "kill -9 of the worker: it had sandboxes running" 1 "$([ -n "$kids" ] && echo 1)"
kill -9 "$epid"
sleep 3
left=0
for k in $kids; do [ -e "/proc/$k" ] && [ "$(awk '{print $3}' "/proc/$k/stat")" != Z ] && left=$((left + 1)); done
check "kill -9 of the worker: none of its $(wc -w <<<"$kids") sandboxes outlives it" 0 "$left"
"$ROOT/ops/dev/stack" up >/dev/null 2>&1
check "kill -9 of the worker: the restarted worker is ready on its admin port" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(cat "$PHX_VAR/run/exec.admin")/readyz")"
