# check: (.stdout | test("mount_rc=[1-9]")) and (.stdout | test("umount_rc=[1-9]"))
mount -t tmpfs none /tmp 2>&1; rc=$?; echo "mount_rc=$rc"; [ $rc = 0 ] && echo "mount: SUCCEEDED"
umount /usr 2>&1; rc=$?; echo "umount_rc=$rc"; [ $rc = 0 ] && echo "umount: SUCCEEDED"
