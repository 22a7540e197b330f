# check: (.stdout | test("SUCCEEDED")) | not
for f in /etc/shadow /root/.ssh /var/lib/redis @HOST_PATHS@ /run /home; do
  if [ -e "$f" ]; then echo "SUCCEEDED visible: $f"; else echo "absent: $f"; fi
done
