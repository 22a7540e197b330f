#!/usr/bin/env bash
# test_config_check.sh -- `phx config check` on the cases in config_cases/ (data-driven: each
# NAME.expect names its arguments, exit code and the lines the output must contain, for the
# file NAME.env or NAME.json), on the shipped example configurations (ops/systemd/env), and
# librdkafka security settings passing through to a live process: a worker started with
# security.protocol=SSL and a CA file that does not exist must stop with librdkafka's own
# error, and one whose SASL password file is missing must stop naming the variable. (That
# every security property reaches librdkafka's configuration, from the environment, from
# _FILE secrets and from the config file, is tests/unit/test_kafka_conf.c.)
. "$(dirname "$0")/lib.sh"
CASES=$ROOT/tests/integration/config_cases
TMP=$(mktemp -d /tmp/phx-deploy-cc.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
printf 'secret-value-123\n' >"$TMP/secret-ok" && chmod 600 "$TMP/secret-ok"
printf 'secret-value-456\n' >"$TMP/secret-open" && chmod 644 "$TMP/secret-open"
printf 'not a real CA\n' >"$TMP/ca.pem"

for exp in "$CASES"/*.expect; do
    name=$(basename "$exp" .expect)
    src=$(ls "$CASES/$name".env "$CASES/$name".json 2>/dev/null | head -1)
    [ -n "$src" ] || { not_ok "$name: no .env or .json beside the .expect"; continue; }
    file=$TMP/$(basename "$src")
    sed "s#@TMP@#$TMP#g" "$src" >"$file"
    args=$(sed -n 's/^# args: *//p' "$exp")
    want_rc=$(sed -n 's/^# exit: *//p' "$exp")
    # shellcheck disable=SC2086
    out=$("$PHX" config check $args "$file" 2>&1)
    check "$name: exit code" "$want_rc" "$?"
    while IFS= read -r line; do
        [ -z "$line" ] || [ "${line:0:1}" = "#" ] && continue
        line=${line//@FILE@/$file}
        check_contains "$name: $line" "${line//@TMP@/$TMP}" "$out"
    done <"$exp"
done

# Usage errors are exit 2, not problems found.
"$PHX" config check >/dev/null 2>&1
check "no file: exit 2" "2" "$?"
"$PHX" config check --for phx-nothing "$TMP/secret-ok" >/dev/null 2>&1
check "unknown --for: exit 2" "2" "$?"
"$PHX" config check "$TMP/does-not-exist.env" >/dev/null 2>&1
check "unreadable file: exit 2" "2" "$?"

# A required option (no shipped binary has one today): a stand-in binary answers --options
# with one, and the check must report it missing from the set of files.
mkdir -p "$TMP/bin"
cat >"$TMP/bin/phx-standin" <<'SH'
#!/bin/sh
[ "$1" = --options ] || exit 2
printf 'PHX_ADMIN_ADDR\tstr\t0\t0\tdefault\t127.0.0.1:0\n'
printf 'PHX_STANDIN_NAME\tstr\t0\t0\trequired\t\n'
printf 'PHX_STANDIN_N\tint\t1\t9\tdefault\t3\n'
SH
chmod +x "$TMP/bin/phx-standin"
printf 'PHX_STANDIN_N=4\n' >"$TMP/standin.env"
out=$(PHX_BIN=$TMP/bin "$PHX" config check --for phx-standin "$TMP/standin.env" 2>&1)
check "required option missing: exit 1" "1" "$?"
check_contains "required option named" "PHX_STANDIN_NAME is required by phx-standin and not set" "$out"
printf 'PHX_STANDIN_NAME=x\n' >"$TMP/standin-name.env"
out=$(PHX_BIN=$TMP/bin "$PHX" config check --for phx-standin "$TMP/standin.env" "$TMP/standin-name.env" 2>&1)
check "required option set in a second file: exit 0" "0" "$?"

# The shipped VM configuration is valid for each unit (file checks off: its paths are the
# target host's).
for env in "$ROOT"/ops/systemd/env/phx-*.env; do
    out=$("$PHX" config check --no-file-checks "$ROOT/ops/systemd/env/common.env" "$env" 2>&1)
    check "ops/systemd: common.env + $(basename "$env")" "0" "$?"
    [ "$T_FAIL" -eq 0 ] || echo "$out"
done

# librdkafka settings reach a live process: its own errors surface and stop the start.
out=$(PHX_KAFKA_BROKERS=127.0.0.1:1 PHX_REDIS_URL=redis://127.0.0.1:1/0 \
    PHX_KAFKA_CONF_security_protocol=SSL PHX_KAFKA_CONF_ssl_ca_location="$TMP/missing-ca.pem" \
    timeout 30 "$PHX_BIN/phx-tools" 2>&1)
check "SSL with a missing CA: phx-tools exits 2" "2" "$?"
check_contains "librdkafka's ssl.ca.location error surfaces" "ssl.ca.location failed" "$out"
check_contains "naming the file" "$TMP/missing-ca.pem" "$out"
out=$(PHX_KAFKA_BROKERS=127.0.0.1:1 PHX_REDIS_URL=redis://127.0.0.1:1/0 \
    PHX_KAFKA_CONF_security_protocol=SASL_SSL PHX_KAFKA_CONF_sasl_mechanisms=PLAIN \
    PHX_KAFKA_CONF_sasl_username=u PHX_KAFKA_CONF_sasl_password_FILE="$TMP/no-password" \
    timeout 30 "$PHX_BIN/phx-planner" 2>&1)
check "SASL password file missing: phx-planner exits 2" "2" "$?"
check_contains "the variable is named" "PHX_KAFKA_CONF_sasl_password_FILE" "$out"
# From the JSON config file too (it used to be accepted and then ignored).
printf '{"PHX_KAFKA_CONF_security_protocol": "SSL", "PHX_KAFKA_CONF_ssl_ca_location": "%s"}\n' \
    "$TMP/missing-ca.pem" >"$TMP/kafka.json"
out=$(PHX_KAFKA_BROKERS=127.0.0.1:1 PHX_REDIS_URL=redis://127.0.0.1:1/0 \
    PHX_CONFIG_FILE="$TMP/kafka.json" timeout 30 "$PHX_BIN/phx-kb" 2>&1)
check "config file's SSL settings: phx-kb exits 2" "2" "$?"
check_contains "librdkafka's error surfaces" "ssl.ca.location failed" "$out"
echo "# $T_NAME: $T_PASS passed, $T_FAIL failed"
[ "$T_FAIL" -eq 0 ]
