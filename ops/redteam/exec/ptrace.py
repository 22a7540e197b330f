# check: true and (.stdout | test("ptrace_attach: killed SIGSYS")) and (.stdout | test("ptrace_traceme: killed SIGSYS"))
probe("ptrace_attach", lambda: sc(101, 16, 1, 0, 0))
probe("ptrace_traceme", lambda: sc(101, 0, 0, 0, 0))
