# check: (.stdout | test("nproc=[1-4]$")) and (.stdout | test("redis|devbroker|phx-") | not)
cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' ' '; echo
cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' ' ' | grep -q -E 're[d]is|devbro[k]er|ph[x]-' && echo 'host processes visible: SUCC''EEDED'
echo "nproc=$(ls -d /proc/[0-9]* | wc -l)"
