# check: true and (.stdout | test("io_uring_setup: killed SIGSYS")) and (.stdout | test("io_uring_enter: killed SIGSYS"))
probe("io_uring_setup", lambda: sc(425, 8, 0))
probe("io_uring_enter", lambda: sc(426, 0, 0, 0, 0, 0, 0))
