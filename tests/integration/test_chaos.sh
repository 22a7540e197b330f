#!/usr/bin/env bash
# test_chaos.sh -- the short chaos run of `make test`: 200 jobs through kill -9s, a Redis
# restart, a broker outage and a paused pool (see tests/chaos/chaos.sh; `make chaos` runs the
# full 10,000-job version).
export CHAOS_JOBS=${CHAOS_JOBS:-200}
export CHAOS_RATE=${CHAOS_RATE:-25}
exec bash "$(dirname "$0")/../chaos/chaos.sh"
