# check: true and (.stdout | test("userfaultfd: killed SIGSYS"))
probe("userfaultfd", lambda: sc(323, 0))
