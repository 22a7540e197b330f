# check: (.stdout | test("setuid0: blocked")) and (.stdout | test("SUCCEEDED") | not)
probe("setuid0", lambda: (os.setuid(0), "SUCCEEDED")[1])
probe("write_uid_map", lambda: try_open("/proc/self/uid_map", "w"))
probe("write_cgroup", lambda: try_open("/sys/fs/cgroup/cgroup.procs", "w"))
