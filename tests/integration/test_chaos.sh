#!/usr/bin/env bash
# test_chaos.sh -- the short chaos run of `make test`: 200 mixed jobs at 5/s through a 6 s
# kill -9 storm, a Redis kill -9 and restart, a broker outage, request error injection and a
# pool paused for 6 s, each with 4 s of quiet around it (see tests/chaos/chaos.sh; `make chaos`
# runs the full 10,000-job version with 20 s storms and pauses).
export CHAOS_JOBS=${CHAOS_JOBS:-200}
export CHAOS_RATE=${CHAOS_RATE:-5}
export CHAOS_KILL_S=${CHAOS_KILL_S:-6} CHAOS_STOP_S=${CHAOS_STOP_S:-6}
export CHAOS_BROKER_S=${CHAOS_BROKER_S:-3} CHAOS_GAP_S=${CHAOS_GAP_S:-4}
exec bash "$(dirname "$0")/../chaos/chaos.sh"
