# check: (.stdout | test("x32_getpid: killed SIGSYS")) and (.stdout | test("int80_getuid: killed SIG(SYS|SEGV)"))
import mmap
def int80():
    code = bytes([0xb8, 24, 0, 0, 0, 0xcd, 0x80, 0xc3])  # mov eax,24 (getuid32? i386 getuid); int 0x80; ret
    m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    m.write(code)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    return "SUCCEEDED uid=%d" % ctypes.CFUNCTYPE(ctypes.c_int)(addr)()
probe("x32_getpid", lambda: sc(0x40000000 | 39))
probe("int80_getuid", int80)
