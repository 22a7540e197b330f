# check: (.stdout | test("euid_after_mount=1000")) and (.stdout | test("mount_rc=[1-9]")) and (.stdout | test("newgrp_uid=0") | not)
ls -l /usr/bin/mount /usr/bin/su
/usr/bin/mount -t tmpfs none /work 2>&1; rc=$?; echo "mount_rc=$rc"; [ $rc = 0 ] && echo "setuid mount: SUCCEEDED"
echo "euid_after_mount=$(id -u)"; [ "$(id -u)" = 0 ] && echo "euid 0: SUCCEEDED"
echo "newgrp_uid=$(echo 'id -u' | /usr/bin/newgrp 2>&1)"
/usr/bin/su -c id root </dev/null 2>&1 | head -2
