# check: (.stdout | test("SUCCEEDED") | not) and ([.stdout | scan("blocked")] | length == 5)
probe("proc_self_exe", lambda: try_open("/proc/self/exe", "wb"))
probe("python_binary", lambda: try_open(os.path.realpath(sys.executable), "ab"))
probe("python_stdlib", lambda: try_open(os.__file__, "a"))
probe("libc", lambda: try_open("/lib/x86_64-linux-gnu/libc.so.6", "ab"))
def replace():
    os.rename("/usr/bin/env", "/usr/bin/env.bak"); return "SUCCEEDED"
probe("rename_in_usr", replace)
