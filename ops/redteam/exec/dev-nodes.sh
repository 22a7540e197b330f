# check: (.stdout | test("SUCCEEDED") | not) and (.stdout | test("devs=null urandom zero"))
echo "devs=$(ls /dev | grep -v -E '^(fd|stdin|stdout|stderr)$' | tr '\n' ' ' | sed 's/ $//')"
for d in /dev/mem /dev/kmem /dev/kmsg /dev/port /dev/sda /dev/vda /proc/kmsg /proc/kcore; do
  if head -c 1 "$d" >/dev/null 2>&1; then echo "$d: SUCCEEDED"; else echo "$d: blocked"; fi
done
