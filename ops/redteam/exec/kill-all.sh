# check: .stdout == "after kill -1\n"
kill -9 -1 2>/dev/null
kill -9 1 2>/dev/null
echo "after kill -1"
