# check: (.stdout | test("tiocsti: blocked EPERM")) and (.stdout | test("tiocsti_hibits: killed SIGSYS"))
probe("tiocsti", lambda: sc(16, 0, 0x5412, ctypes.cast(ctypes.c_char_p(b"x"), ctypes.c_void_p).value))
probe("tiocsti_hibits", lambda: sc(16, 0, 0x5412 | (1 << 32), ctypes.cast(ctypes.c_char_p(b"x"), ctypes.c_void_p).value))
