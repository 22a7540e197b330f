#!/usr/bin/env bash
# test_intel_import.sh -- `phx intel import` as an operator runs it (no stack needed): a mixed
# blocklist becomes a feed file; bad lines are reported with their line numbers and counted;
# too many bad lines or no entries leave the existing feed untouched; stdin works; the written
# feed is replaced by rename (a reader never sees half a file: its inode changes). The
# line-by-line conversion itself is tested from tables in tests/unit/test_intel.c.
. "$(dirname "$0")/lib.sh"
D=$(mktemp -d /tmp/phx-intel-import.XXXXXX)
trap 'rm -rf "$D"; echo "# $T_NAME: $T_PASS passed, $T_FAIL failed"; [ "$T_FAIL" -eq 0 ] || exit 1' EXIT

cat >"$D/list.txt" <<'EOF'
# a hosts file with AdBlock rules mixed in
127.0.0.1 localhost
0.0.0.0 ads.bad.example tracker.bad.example
||evil.example^$third-party
@@||fine.example^
http://not-a-domain.example/x
plain.bad.example
bad_host!
EOF
imp() { "$PHX" intel import "$@" 2>"$D/err" >/dev/null; }

imp --kind domains --source blocklist-a --out "$D/feed" "$D/list.txt"
check "bad lines refuse the import by default" 1 $?
check "nothing written" no "$([ -e "$D/feed" ] && echo yes || echo no)"
err=$(cat "$D/err")
check_contains "bad line 6 reported with its number" "list.txt:6: a URL, not a domain" "$err"
check_contains "bad line 8 reported with its number" "list.txt:8: not a domain name" "$err"
check_contains "counts" "8 lines: 4 entries, 2 bad, 2 ignored, 1 blank or comments" "$err"
check_contains "ignored lines counted by reason" "ignored 1 lines: AdBlock exception rule" "$err"

imp --kind domains --source blocklist-a --expires 7d --max-bad 2 --out "$D/feed" "$D/list.txt"
check "--max-bad 2 accepts" 0 $?
check "the feed's entries" "domain ads.bad.example
domain tracker.bad.example
domain evil.example
domain plain.bad.example" "$(grep '^domain' "$D/feed")"
check "source line" "@source blocklist-a" "$(grep '^@source' "$D/feed")"
exp=$(sed -n 's/^@expires //p' "$D/feed")
days=$(( ($(date -d "$exp" +%s) - $(date +%s) + 3600) / 86400 ))
check "expiry 7 days ahead" 7 "$days"
check "no temp file left" "" "$(ls "$D" | grep tmp)"

ino=$(stat -c %i "$D/feed")
printf '203.0.113.7\n198.51.100.0/24 ; SBL1\n' | imp --kind ips --source drop --out "$D/feed" -
check "stdin import" 0 $?
check "replaced by rename (new inode)" yes "$([ "$(stat -c %i "$D/feed")" != "$ino" ] && echo yes || echo no)"
check "expires never by default" "@expires never" "$(grep '^@expires' "$D/feed")"
check "ip and cidr entries" "ip 203.0.113.7
cidr 198.51.100.0/24" "$(grep -E '^(ip|cidr) ' "$D/feed")"

before=$(cat "$D/feed")
printf '<html><body>502 Bad Gateway</body></html>\n' | imp --kind ips --source drop --max-bad 5 --out "$D/feed" -
check "a page with no entries is refused" 1 $?
check_contains "says why" "no entries" "$(cat "$D/err")"
check "the previous feed is untouched" "$before" "$(cat "$D/feed")"

imp --kind colours --source x --out "$D/feed" "$D/list.txt"
check "unknown kind is a usage error" 2 $?
