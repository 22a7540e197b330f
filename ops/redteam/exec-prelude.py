# exec-prelude.py -- helpers prepended to every Python attack program of ops/redteam/exec/.
# probe() runs each attempt in a forked child so that a seccomp kill (SIGSYS) is reported by
# the parent instead of ending the program; an attempt that worked prints SUCCEEDED, the
# marker both tests/security/test_exec_attacks.sh and `phx redteam` treat as an escape.
import ctypes, errno, os, signal, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
def sc(nr, *a):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(x) for x in a])
    e = ctypes.get_errno()
    return "SUCCEEDED" if r >= 0 else "blocked " + errno.errorcode.get(e, str(e))
def probe(name, fn):
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            print(f"{name}: {fn()}")
        except Exception as e:
            print(f"{name}: blocked {type(e).__name__}")
        sys.stdout.flush()
        os._exit(0)
    _, st = os.waitpid(pid, 0)
    if os.WIFSIGNALED(st):
        print(f"{name}: killed {signal.Signals(os.WTERMSIG(st)).name}")
def try_open(path, mode):
    try:
        with open(path, mode) as f:
            if "w" in mode or "a" in mode:
                f.write("pwned")
            else:
                f.read(16)
        return "SUCCEEDED"
    except OSError as e:
        return "blocked " + errno.errorcode.get(e.errno, str(e.errno))
