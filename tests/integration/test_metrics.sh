#!/usr/bin/env bash
# test_metrics.sh -- the metrics of a running stack: every process's /metrics passes
# `promtool check metrics` and carries the series the dashboards and alerts use (consumer lag
# per partition, producer queue, worker saturation, Redis and Kafka latencies, process RSS and
# CPU, jobs by state and tenant); then a real Prometheus scrapes the stack with
# ops/prometheus's config and rules, and a few queries answer.
. "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null && command -v prometheus >/dev/null || {
    echo "# SKIPPED: prometheus/promtool not installed (make deps)"
    exit 0
}
# Statistics every second instead of 5 s, so lag series exist within the test.
export PHX_KAFKA_CONF_statistics_interval_ms=1000
stack_up
M=$PHX_VAR/metrics
mkdir -p "$M"
RUN=$PHX_VAR/run

id=$(uid metrics)
job "$id" '[{"id":"a","kind":"tool.calc","input":{"expr":"1+2"}}]' | kafka_put phx.jobs "$id"
check "a job runs" succeeded "$(reply "$id" 30 | jq -r .status)"
# Let a statistics report (and the lag gauges) follow the job.
sleep 2

# --- 1. every process: promtool-clean text, and the series it must have ----------------------
procs=0
for f in "$RUN"/*.admin; do
    name=$(basename "$f" .admin)
    curl -sf "http://127.0.0.1:$(cat "$f")/metrics" >"$M/$name.prom"
    out=$(promtool check metrics <"$M/$name.prom" 2>&1)
    check "promtool check metrics: $name" "0:" "$?:$out"
    for s in process_resident_memory_bytes process_cpu_seconds_total phx_build_info \
        phx_kafka_producer_queue_messages; do
        check_contains "$name exports $s" "$s" "$(grep -o "^$s" "$M/$name.prom" | head -n1)"
    done
    procs=$((procs + 1))
done
check "processes scraped" true "$([ "$procs" -ge 3 ] && echo true || echo false)"
P=$M/planner.prom
check_contains "planner: lag per partition of phx.jobs" 'phx_kafka_consumer_lag_messages{partition="' "$(grep 'topic="phx.jobs"' "$P")"
check_contains "planner: worker saturation" "phx_worker_busy_threads" "$(cat "$P")"
check_contains "planner: worker threads" "phx_worker_threads 2" "$(cat "$P")"
check_contains "planner: redis latency by command" 'phx_redis_command_duration_seconds_bucket{command="' "$(cat "$P")"
check_contains "planner: kafka produce latency" "phx_kafka_produce_duration_seconds_count" "$(cat "$P")"
check_contains "planner: jobs by state and tenant" 'phx_jobs_finished_total{state="succeeded",tenant="default"}' "$(cat "$P")"
check_contains "planner: events by type" 'phx_planner_events_total{type="step.dispatched"}' "$(cat "$P")"
check_contains "tools: steps by kind" 'phx_steps_total{kind="tool.calc",outcome="ok"}' "$(cat "$M/tools.prom")"
# No job ids in labels: the job id must not appear anywhere in any exposition.
check "no job id in any label" "" "$(grep -l -- "$id" "$M"/*.prom)"

# --- 2. a real Prometheus with the shipped rules ---------------------------------------------
"$ROOT/ops/prometheus/targets.sh" "$PHX_VAR" >"$RUN/prometheus-targets.json"
check "targets.sh: one target per process" "$procs" "$(jq length "$RUN/prometheus-targets.json")"
PPORT=$("$PHX_BIN/phx-freeport" 1)
sed -e "s|^  scrape_interval: .*|  scrape_interval: 1s|" -e "s|^  evaluation_interval: .*|  evaluation_interval: 1s|" \
    -e "s|phoenix.rules.yml|$ROOT/ops/prometheus/phoenix.rules.yml|" \
    -e "s|\"../../var/run/prometheus-targets.json\"|\"$RUN/prometheus-targets.json\"|" \
    "$ROOT/ops/prometheus/prometheus.yml" >"$M/prometheus.yml"
prometheus --config.file="$M/prometheus.yml" --storage.tsdb.path="$M/tsdb" \
    --web.listen-address="127.0.0.1:$PPORT" >"$PHX_VAR/log/prometheus.log" 2>&1 &
PROM=$!
trap 'kill $PROM 2>/dev/null; wait $PROM 2>/dev/null; stack_cleanup' EXIT
q() { curl -s --data-urlencode "query=$1" "http://127.0.0.1:$PPORT/api/v1/query" | jq -c '.data.result'; }
for _ in $(seq 100); do
    [ "$(q 'count(up{job="phoenix"} == 1)' | jq -r '.[0].value[1] // 0')" = "$procs" ] && break
    sleep 0.2
done
check "prometheus: every process up" "$procs" "$(q 'count(up{job="phoenix"} == 1)' | jq -r '.[0].value[1] // 0')"
check "prometheus: pool label from targets" true "$(q 'up{pool="planner"}' | jq 'length == 1')"
for _ in $(seq 50); do
    [ "$(q 'phx:kafka_consumer_lag:sum{topic="phx.jobs"}' | jq length)" = 1 ] && break
    sleep 0.2
done
check "prometheus: recording rule (lag per topic)" 1 "$(q 'phx:kafka_consumer_lag:sum{topic="phx.jobs"}' | jq length)"
check "prometheus: jobs finished" true "$(q 'sum(phx_jobs_finished_total{state="succeeded"})' | jq '(.[0].value[1] | tonumber) >= 1')"
check "prometheus: rules loaded" 2 "$(curl -s "http://127.0.0.1:$PPORT/api/v1/rules" | jq '.data.groups | length')"
check "prometheus: nothing firing on a healthy stack" 0 \
    "$(curl -s "http://127.0.0.1:$PPORT/api/v1/alerts" | jq '[.data.alerts[] | select(.state == "firing")] | length')"

# --- 3. the Grafana dashboards: valid JSON, and every panel query runs on this Prometheus -------
for d in "$ROOT"/ops/grafana/dashboards/*.json; do
    name=$(basename "$d")
    check "$name: uid and panels" true "$(jq '(.uid | length > 0) and (.panels | length > 3)' "$d")"
    bad=0
    while IFS= read -r expr; do
        e=${expr//\$__rate_interval/1m}
        e=${e//\$pool/.*}
        st=$(curl -s --data-urlencode "query=$e" "http://127.0.0.1:$PPORT/api/v1/query" | jq -r .status)
        [ "$st" = success ] || { bad=$((bad + 1)); echo "# $name: query failed: $e" >&2; }
    done < <(jq -r '.panels[].targets[].expr' "$d")
    check "$name: every query accepted by Prometheus" 0 "$bad"
done
# The overview shows this stack's work: messages per pool and finished jobs are non-empty.
check "overview: messages by pool has data" true \
    "$(q 'sum by (pool) (rate(phx_messages_total{outcome="ok"}[1m]))' | jq 'length >= 2')"
