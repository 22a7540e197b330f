#!/usr/bin/env bash
# test_gateway_openapi.sh -- docs/openapi.json matches the server: the same routes (method,
# path, scope) as the ingress's route table, every documented operation answers on a live
# stack with a status the document lists, and what is not documented is 404/405.
. "$(dirname "$0")/lib.sh"
DOC=$ROOT/docs/openapi.json
SRC=$ROOT/producers/ingress/ingress.c

# --- 1. the document and the route table list the same routes with the same scopes --------
doc_routes=$(jq -r '.paths | to_entries[] | .key as $p | .value | to_entries[]
    | select(.key != "parameters") | "\(.key | ascii_upcase) \($p) \(.value."x-phx-scope")"' "$DOC" |
    sed 's/{id}/*/g' | sort)
src_routes=$(sed -n '/phx_routes\[\] = {/,/^};/p' "$SRC" |
    sed -n 's/.*{"\([A-Z]*\)", "\([^"]*\)", PHX_SCOPE_\([A-Z_]*\),.*/\1 \2 \3/p' |
    awk '{ s = tolower($3); sub(/_/, ":", s); print $1, $2, s }' | sort)
check "openapi: route table found in the source" 1 "$(( $(grep -c . <<<"$src_routes") >= 9 ))"
check "openapi: same routes and scopes as the server" "$src_routes" "$doc_routes"
check "openapi: version 3.1" 3.1.0 "$(jq -r .openapi "$DOC")"
check "openapi: every operation documents 401" "" "$(jq -r '.paths[] | to_entries[] | select(.key != "parameters")
    | select(.value.responses["401"] == null) | .value.operationId' "$DOC")"

# --- 2. every documented operation, called for real, answers a documented status ----------
export PHX_STACK_POOLS="planner tools"
stack_up
A="Authorization: Bearer $PHX_API_KEY"
T=$PHX_VAR/oa
mkdir -p "$T"
jq -cn '{steps: [{id:"a",kind:"tool.calc",input:{expr:"1+1"}}]}' >"$T/job.json"
job_id=$(api POST /v1/jobs "$T/job.json" -H "$A" | cut -d' ' -f2- | jq -r .job_id)
slow_id=$(jq -cn '{steps: [{id:"a",kind:"kb.search",input:{},timeout_ms:60000}]}' >"$T/slow.json" &&
    api POST /v1/jobs "$T/slow.json" -H "$A" | cut -d' ' -f2- | jq -r .job_id)
reply "$job_id" >/dev/null
printf '{"principal":"oa","roles":"reader"}' >"$T/key.json"
newkey() { api POST /v1/admin/keys "$T/key.json" -H "$A" | cut -d' ' -f2- | jq -r .id; }
printf '{"grace_s":0}' >"$T/rotate.json"
while read -r method path; do
    url=$path body=
    case "$method $path" in
    "DELETE /v1/jobs/{id}") url=/v1/jobs/$slow_id ;;
    *"/v1/jobs/{id}"*) url=${path//\{id\}/$job_id} ;;
    *"/v1/admin/keys/{id}"*) url=${path//\{id\}/$(newkey)} ;;
    esac
    [ "$method $path" = "POST /v1/jobs" ] && body=$T/job.json
    [ "$method $path" = "POST /v1/admin/keys" ] && body=$T/key.json
    [ "$method $path" = "POST /v1/admin/keys/{id}/rotate" ] && body=$T/rotate.json
    code=$(api "$method" "$url" "$body" -H "$A" --max-time 10 | cut -d' ' -f1)
    m=$(tr 'A-Z' 'a-z' <<<"$method")
    documented=$(jq -r --arg p "$path" --arg m "$m" '.paths[$p][$m].responses | keys[]' "$DOC" | grep -cx "$code")
    check "openapi: $method $path answers a documented status ($code)" 1 "$documented"
    check "openapi: $method $path without credentials is 401" 401 "$(api "$method" "$url" '' | cut -d' ' -f1)"
done < <(jq -r '.paths | to_entries[] | .key as $p | .value | keys[] | select(. != "parameters")
    | "\(ascii_upcase) \($p)"' "$DOC")

# --- 3. what is not documented does not exist ---------------------------------------------
check "openapi: undocumented path 404" 404 "$(api GET /v1/nothing '' -H "$A" | cut -d' ' -f1)"
check "openapi: undocumented method 405" 405 "$(api PATCH "/v1/jobs/$job_id" '' -H "$A" | cut -d' ' -f1)"
check "openapi: no version-less routes" 404 "$(api GET /jobs '' -H "$A" | cut -d' ' -f1)"
exit "$((T_FAIL > 0))"
