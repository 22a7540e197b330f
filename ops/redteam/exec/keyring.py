# check: true and (.stdout | test("keyctl: killed SIGSYS")) and (.stdout | test("add_key: killed SIGSYS")) and (.stdout | test("request_key: killed SIGSYS"))
probe("keyctl", lambda: sc(250, 0, 0, 0, 0, 0))
probe("add_key", lambda: sc(248, ctypes.cast(ctypes.c_char_p(b"user"), ctypes.c_void_p).value, ctypes.cast(ctypes.c_char_p(b"k"), ctypes.c_void_p).value, 0, 0, -2))
probe("request_key", lambda: sc(249, 0, 0, 0, 0))
