# check: .duration_ms < 5000 and (.stdout | test("parent done"))
( setsid sh -c 'trap "" HUP TERM; sleep 30; echo daemon-survived > /tmp/d' & )
sh -c 'sleep 40 &'
echo "parent done"
