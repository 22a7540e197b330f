# check: (.stdout | test("SUCCEEDED") | not) and (.stdout | test("sys_exists: False"))
print("sys_exists:", os.path.exists("/sys"))
probe("sys_cgroup", lambda: try_open("/sys/fs/cgroup/memory/memory.limit_in_bytes", "w"))
probe("sys_kernel", lambda: try_open("/sys/kernel/uevent_helper", "w"))
