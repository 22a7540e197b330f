#!/usr/bin/env bash
# test_examples.sh -- every file in examples/ runs end to end on the stack `make up` starts
# (every pool, gates on, PHX_STACK_EXAMPLES=1), submitted with the CLI (`phx submit --wait`);
# each reply's status and one output that shows the example did its work are checked. A file
# in examples/ with no row below fails the test: a new example comes with its check.
#
# What the stack cannot provide comes from test doubles, as examples/README.md tells a user to
# do by hand: the LLM is tests/tools/fake_llm with the scripted answers of
# tests/tools/fake_llm_examples.json, and retry-policy (which fetches https://example.com/,
# and this machine may have no network) fetches a loopback server whose first answer is a
# dropped connection, so its retry is exercised rather than assumed. Policy documents
# (schema policy.v1) are stored as phx:safety:policy:<name> and shown at work on a scan job
# run as that tenant.
# shellcheck disable=SC2016,SC2154 # jq programs in single quotes; rc is set in the EXIT trap
. "$(dirname "$0")/lib.sh"

FAKE=$PHX_BIN/../tests/fake_llm
[ -x "$FAKE" ] || { not_ok "fake_llm built" "$FAKE missing"; exit 1; }
# The doubles start first, each on a port it binds itself (port 0) and holds: ports chosen
# before a long stack_up and bound after it were taken meanwhile by another test's stack (CI:
# "Failed to bind to port ... Address already in use"). T_PIDS / T_DIRS have stack_cleanup
# stop and remove them, also when stack_up fails.
W=$(mktemp -d /tmp/phx-examples.XXXXXX)
T_DIRS+=("$W")
"$FAKE" --port-file "$W/llm.port" \
    --script "$ROOT/tests/tools/fake_llm_examples.json" >/dev/null 2>"$W/fake.log" &
T_PIDS+=($!)
python3 - 0 "$W/web.port" >/dev/null 2>"$W/web.log" <<'EOF' &
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    n = 0
    def do_GET(self):
        H.n += 1
        if H.n == 1:  # no answer at all: a retryable fetch_failed
            self.close_connection = True
            return
        body = b"hello from the examples test\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(s.server_port))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
s.serve_forever()
EOF
T_PIDS+=($!)
for _ in $(seq 100); do [ -s "$W/llm.port" ] && [ -s "$W/web.port" ] && break; sleep 0.1; done
if [ ! -s "$W/llm.port" ] || [ ! -s "$W/web.port" ]; then
    echo "not ok - test_examples: test doubles up -- $(cat "$W/fake.log" "$W/web.log")"
    stop_procs "${T_PIDS[@]}"
    rm -rf "$W"
    exit 1
fi
export WEB_URL=http://127.0.0.1:$(cat "$W/web.port")/
export PHX_LLM_BASE_URL=http://127.0.0.1:$(cat "$W/llm.port")/v1
export PHX_LLM_MODEL=fake-examples
# Loopback only for the fetch pool and the url gate of tenant "loopback" (below).
export PHX_FETCH_ALLOW_CIDRS=127.0.0.1/32 PHX_SAFETY_POLICY_CHECK_MS=0 PHX_STACK_EXAMPLES=1
unset PHX_STACK_POOLS PHX_SAFETY_GATES
T_UP=$SECONDS
stack_up
T_UP=$((SECONDS - T_UP))
redis set phx:safety:policy:loopback \
    '{"schema": "policy.v1", "name": "loopback", "urls": {"allow_cidrs": ["127.0.0.1/32"]}}' >/dev/null

# The job a policy document is shown at work on: a prompt with an e-mail address, which the
# built-in policy allows in prompts and the tenant policy redacts.
PII_SCAN='{"schema": "job.v1", "steps": [{"id": "prompt", "kind": "safety.scan",
  "input": {"role": "user_prompt", "text": "I am jane.doe@example.org; summarise my notes."}}]}'

# ex NAME JOB_FILTER CHECK WANT [STATUS]: a row. examples/NAME.json (policy.v1: PII_SCAN run
# as the policy's tenant), rewritten by the jq JOB_FILTER, must reply STATUS (default
# succeeded), and jq CHECK over the reply must print WANT.
R_NAME=() R_FILTER=() R_CHECK=() R_WANT=() R_STATUS=()
ex() { R_NAME+=("$1") R_FILTER+=("$2") R_CHECK+=("$3") R_WANT+=("$4") R_STATUS+=("${5:-succeeded}"); }

# Every policy is stored first, then every job is submitted at once (one `phx submit --wait`
# each, in parallel: the file takes the stack's time, not the sum of the jobs'), then checked.
run_rows() {
    local i f job got subs=() t0=$SECONDS
    for f in "${R_NAME[@]}"; do
        f=$ROOT/examples/$f.json
        if [ -f "$f" ] && [ "$(jq -r .schema "$f")" = policy.v1 ]; then
            redis set "phx:safety:policy:$(jq -r .name "$f")" "$(cat "$f")" >/dev/null
        fi
    done
    redis incr phx:safety:policy:version >/dev/null
    for i in "${!R_NAME[@]}"; do
        f=$ROOT/examples/${R_NAME[$i]}.json
        [ -f "$f" ] || continue
        if [ "$(jq -r .schema "$f")" = policy.v1 ]; then
            job=$(jq -c --arg t "$(jq -r .name "$f")" ".tenant = \$t | ${R_FILTER[$i]}" <<<"$PII_SCAN")
        else
            job=$(jq -c "${R_FILTER[$i]}" "$f")
        fi
        timeout -k 5 60 "$PHX" submit - --wait --timeout 45 <<<"$job" >"$W/reply.$i" 2>"$W/err.$i" &
        subs+=($!)
    done
    wait "${subs[@]}"
    echo "# $T_NAME: stack up in ${T_UP}s, ${#subs[@]} jobs replied in $((SECONDS - t0))s"
    for i in "${!R_NAME[@]}"; do
        if [ ! -f "$ROOT/examples/${R_NAME[$i]}.json" ]; then
            not_ok "${R_NAME[$i]}: examples/${R_NAME[$i]}.json exists"
            continue
        fi
        # One jq for both: the status, then the check's value (or why it could not be read).
        mapfile -t got < <(jq -r "(.status // \"\"), (try (${R_CHECK[$i]}) catch \"check failed: \\(.)\")" \
            "$W/reply.$i" 2>&1)
        if [ "${got[0]:-}" != "${R_STATUS[$i]}" ]; then
            not_ok "${R_NAME[$i]}: reply status ${R_STATUS[$i]}" "got [${got[0]:-}]: $(head -c 900 "$W/reply.$i") $(head -c 300 "$W/err.$i")"
            continue
        fi
        check "${R_NAME[$i]}: ${R_STATUS[$i]}, ${R_WANT[$i]}" "${R_WANT[$i]}" "${got[1]:-}"
    done
}

# example                filter                                   check                                   want
ex calc-chain            .                                        .outputs.b.value                        15
ex exec-python           .                                        '.outputs.stats.stdout | fromjson | "\(.mean) \(.stdev) \(.words)"' '3.875 2.748 9'
ex exec-sh               .                                        '"\(.outputs.pipeline.exit_code) \(.outputs.pipeline.stdout | split("\n")[0] | split(" ") | map(select(. != "")) | join(" "))"' '3 3 red'
ex fan-out               .                                        .outputs.sum.value                      1787
ex kb-retrieval          .                                        '.outputs.answer.hits[0].id'            leave
ex llm-chat              .                                        .outputs.fahrenheit.value               212
ex llm-embed             .                                        'def cos(a; b): ([a, b] | transpose | map(.[0] * .[1]) | add) / ((a | map(. * .) | add | sqrt) * (b | map(. * .) | add | sqrt)); .outputs.vectors.vectors as $v | "\($v | length) \(cos($v[0]; $v[1]) > cos($v[0]; $v[2]))"' '3 true'
ex llm-plan              .                                        '[.outputs.plan.plan.steps[].kind] | join(",")' 'tool.calc,tool.calc'
ex retry-policy          '.tenant = "loopback" | .steps[0].input.url = env.WEB_URL' '"\(.steps.fetch.attempts) \(.outputs.status.value)"' '2 200'
ex safety-review-plan    .                                        '"\(.outputs.review.verdict) \([.outputs.review.findings[].category] | sort | join(","))"' 'block dangerous_chain,private_address'
ex safety-scan           .                                        '[.outputs.prompt, .outputs.page, .outputs.reply, .outputs.link] | map(.verdict) | join(" ")' 'block block redact block'
ex safety-policy-tenant  .                                        '"\(.outputs.prompt.policy) \(.outputs.prompt.verdict)"' 'acme redact'
# The written-out default policy applies to every tenant without one of its own, from the
# first job on: safety-scan's verdicts above are then its verdicts (it must equal the built-in).
ex safety-policy         .                                        '"\(.outputs.prompt.policy) \(.outputs.prompt.verdict)"' 'default allow'

run_rows

for f in "$ROOT"/examples/*.json; do
    n=$(basename "$f" .json)
    case " ${R_NAME[*]} " in *" $n "*) ;; *) not_ok "examples/$n.json has a row in test_examples.sh" ;; esac
done
