# check: (.stdout | test("full at [23]")) and (.stdout | test("big_rc=[1-9]")) and (.stdout | test("tmp_full=yes"))
# limits: {"disk_mb": 8}
for i in 1 2 3 4; do dd if=/dev/zero of=/work/f$i bs=1M count=3 2>/dev/null || { echo "full at $i"; break; }; done
dd if=/dev/zero of=/tmp/t bs=1M count=3 2>/dev/null && echo tmp_full=no || echo tmp_full=yes
rm -f /work/f*
dd if=/dev/zero of=/work/big bs=1M count=64 2>/dev/null; echo "big_rc=$?"
