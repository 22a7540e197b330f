# check: (.stdout | test("rc=[1-9]")) and (.stdout | test("uid=0") | not)
unshare -r id 2>&1; rc=$?; echo "rc=$rc"; [ $rc = 0 ] && echo "unshare: SUCCEEDED"
