#!/usr/bin/env bash
# test_ops_page.sh -- the ops page end to end in headless Chromium (tests/tools/cdp.py): /ops
# loads without credentials, its API needs ops:read, the page (logged in with an ops:read key
# typed into its form) shows the pools of this stack and a job submitted during the test, and
# a click on the job shows its timeline; the key appears in no URL and no log.
. "$(dirname "$0")/lib.sh"
CDP=$ROOT/tests/tools/cdp.py
if ! command -v chromium >/dev/null || ! /usr/bin/python3 -c 'import websocket' 2>/dev/null; then
    echo "# SKIPPED: chromium or python3-websocket not installed (make deps)"
    exit 0
fi
export PHX_STACK_POOLS="planner tools"
stack_up
A="Authorization: Bearer $PHX_API_KEY"
T=$PHX_VAR/ops
mkdir -p "$T"
OPS_KEY=$("$PHX" keys create --tenant default --principal ops --roles ops:read 2>/dev/null)
READER=$("$PHX" keys create --tenant default --principal r --roles reader 2>/dev/null)
printf %s "$OPS_KEY" >"$T/key"

# --- the API and its scope ------------------------------------------------------------------
check "page: /ops is served without credentials" 200 "$(api GET /ops '' | head -n1 | cut -d' ' -f1)"
check "api: no credentials 401" 401 "$(api GET /v1/ops/overview '' | cut -d' ' -f1)"
check "api: jobs:read is not enough (403)" 403 "$(api GET /v1/ops/overview '' -H "Authorization: Bearer $READER" | cut -d' ' -f1)"
ov=$(api GET /v1/ops/overview '' -H "Authorization: Bearer $OPS_KEY")
check "api: ops:read 200" 200 "${ov%% *}"

# --- a job submitted during the test --------------------------------------------------------
jq -cn '{steps: [{id:"x", kind:"tool.calc", input:{expr:"6*7"}}, {id:"y", kind:"tool.calc", needs:["x"], input:{expr:"{{steps.x.output.value}}+1"}}]}' >"$T/job.json"
id=$(api POST /v1/jobs "$T/job.json" -H "$A" | cut -d' ' -f2- | jq -r .job_id)
check "job: succeeded" succeeded "$(reply "$id" 30 | jq -r .status)"

# --- the page in Chromium -------------------------------------------------------------------
pools="[...document.querySelectorAll('#pools tr[data-pool]')].map(r => r.dataset.pool).join(' ')"
out=$(/usr/bin/python3 "$CDP" "$PHX_INGRESS_URL/ops" --key-file "$T/key" --timeout 45 \
    --wait "['phx-planner','phx-tools','phx-ingress'].every(p => document.querySelector('#pools tr[data-pool=\"' + p + '\"]'))" \
    --wait "!!document.querySelector('#jobs tr[data-job=\"$id\"]')" \
    --eval "$pools" \
    --eval "document.querySelector('#jobs tr[data-job=\"$id\"]').innerText" \
    --click-job "$id" \
    --wait "[...document.querySelectorAll('#timeline tbody tr')].some(r => r.innerText.includes('job.succeeded'))" \
    --eval "document.querySelectorAll('#steps tbody tr').length" \
    --eval "[location.href, sessionStorage.length, document.body.innerText.includes('$OPS_KEY')]" \
    --screenshot "$T/ops.png" 2>"$T/cdp.err")
rc=$?
if [ $rc -eq 77 ]; then
    echo "# SKIPPED: chromium cannot run here: $(cat "$T/cdp.err")"
    exit 0
fi
check "chromium: every step passed" 0 "$rc"
[ $rc -eq 0 ] || cat "$T/cdp.err" >&2
mapfile -t r <<<"$out"
check "page: shows the stack's pools" '"phx-ingress phx-planner phx-tools"' "${r[0]:-}"
check_contains "page: shows the job submitted in this test" "succeeded" "${r[1]:-}"
check "page: the job's timeline lists both steps" 2 "${r[2]:-}"
check "page: the key is in no URL and not on the page" "[\"$PHX_INGRESS_URL/ops\",1,false]" "$(tr -d ' ' <<<"${r[3]:-}")"
check "screenshot: a PNG" "PNG" "$(head -c 4 "$T/ops.png" 2>/dev/null | tail -c 3)"
check "logs: the key appears in no log" "" "$(grep -l -F "$OPS_KEY" "$PHX_VAR"/log/*.log)"
exit "$((T_FAIL > 0))"
