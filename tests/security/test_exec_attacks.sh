#!/usr/bin/env bash
# test_exec_attacks.sh -- the exec.run sandbox under attack, through the real pipeline.
#
# Each case is a small hostile program submitted as an exec.run step of its own job (raw Kafka
# -> planner -> phx-exec -> phx.replies). The program prints what it managed to do; the case
# asserts the expected defence with a jq expression over the step's output. Python probes run
# each attempt in a forked child, so "killed SIGSYS" (the seccomp default action) is printed
# by the parent instead of ending the program. All jobs are submitted first and collected
# afterwards, so the pool works on several at once. After the suite the host must be
# unchanged: a canary file, the Redis and broker processes, the hostname, /proc/sys, and no
# process left running as the sandbox's host uid.
#
# Needs root (or the privileges in docs/security.md); skips otherwise.
. "$(dirname "$0")/../integration/lib.sh"
if [ "$(id -u)" != 0 ]; then
    echo "# SKIPPED: the exec sandbox needs root (see docs/security.md)"
    exit 0
fi
[ -x "$PHX_BIN/phx-exec" ] || { not_ok "phx-exec built" "$PHX_BIN/phx-exec missing"; exit 1; }
export PHX_STACK_POOLS="planner exec"
# No phx-safety in this stack: safety gates (docs/safety.md) are tested in test_safety_gates.sh.
export PHX_SAFETY_GATES=false
export PHX_CONCURRENCY=2
stack_up
# lib.sh's EXIT trap reports failures but keeps the script's exit status: make them count.
trap 'stack_cleanup || exit 1' EXIT

# --- host state before --------------------------------------------------------------------
SANDBOX_UID=99999
CANARY=$(mktemp /tmp/phx-canary.XXXXXX)
echo intact >"$CANARY"
REDIS_PID=$(cat "$PHX_VAR/run/redis.pid")
BROKER_PID=$(cat "$PHX_VAR/run/devbroker.pid")
HOSTNAME0=$(hostname)
PIDMAX0=$(cat /proc/sys/kernel/pid_max)
BROKER_PORT=${PHX_KAFKA_BROKERS##*:}
# A host service on an abstract unix socket: the sandbox must not reach it.
ABSTRACT="phx-test-$$-$RANDOM"
python3 -c "
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind('\0$ABSTRACT'); s.listen(1); s.settimeout(120)
try:
    c, _ = s.accept(); open('$CANARY.abstract', 'w').write('reached')
except Exception: pass
" &
ABSTRACT_PID=$!

# --- the probes ---------------------------------------------------------------------------
read -r -d '' PRELUDE <<'PY'
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
PY

NAMES=()
declare -A JOB LANGS CHECK
# attack NAME LANG JQ_CHECK [LIMITS_JSON] <<'EOF' code EOF
attack() {
    local name=$1 lang=$2 check=$3 limits=${4:-{\}} code id
    code=$(cat)
    [ "$lang" = python ] && code="$PRELUDE"$'\n'"$code"
    id=$(uid atk)
    NAMES+=("$name")
    JOB[$name]=$id
    CHECK[$name]=$check
    job "$id" "$(jq -cn --arg lang "$lang" --arg code "$code" --argjson limits "$limits" \
        '[{id: "x", kind: "exec.run", timeout_ms: 120000,
           input: {lang: $lang, code: $code, limits: $limits}}]')" | kafka_put phx.jobs "$id"
}
# all PROBE-NAMES were killed by seccomp
killed() { local e='true' n; for n in "$@"; do e="$e and (.stdout | test(\"$n: killed SIGSYS\"))"; done; echo "$e"; }

# 1-17: dangerous syscalls (x86_64 numbers), each must kill the prober
attack ptrace python "$(killed ptrace_attach ptrace_traceme)" <<'EOF'
probe("ptrace_attach", lambda: sc(101, 16, 1, 0, 0))
probe("ptrace_traceme", lambda: sc(101, 0, 0, 0, 0))
EOF
attack process_vm_readv python "$(killed process_vm_readv process_vm_writev)" <<'EOF'
probe("process_vm_readv", lambda: sc(310, 1, 0, 0, 0, 0, 0))
probe("process_vm_writev", lambda: sc(311, 1, 0, 0, 0, 0, 0))
EOF
attack mount python "$(killed mount umount2 pivot_root chroot)" <<'EOF'
probe("mount", lambda: sc(165, ctypes.cast(ctypes.c_char_p(b"none"), ctypes.c_void_p).value, ctypes.cast(ctypes.c_char_p(b"/tmp"), ctypes.c_void_p).value, ctypes.cast(ctypes.c_char_p(b"tmpfs"), ctypes.c_void_p).value, 0, 0))
probe("umount2", lambda: sc(166, ctypes.cast(ctypes.c_char_p(b"/usr"), ctypes.c_void_p).value, 2))
probe("pivot_root", lambda: sc(155, ctypes.cast(ctypes.c_char_p(b"/tmp"), ctypes.c_void_p).value, ctypes.cast(ctypes.c_char_p(b"/tmp"), ctypes.c_void_p).value))
probe("chroot", lambda: sc(161, ctypes.cast(ctypes.c_char_p(b"/tmp"), ctypes.c_void_p).value))
EOF
attack mount-cmd sh '(.stdout | test("mount_rc=[1-9]")) and (.stdout | test("umount_rc=[1-9]"))' <<'EOF'
mount -t tmpfs none /tmp 2>&1; echo "mount_rc=$?"
umount /usr 2>&1; echo "umount_rc=$?"
EOF
attack namespaces python "$(killed unshare setns) and (.stdout | test(\"clone_newuser: blocked EPERM\")) and (.stdout | test(\"clone_newnet: blocked EPERM\")) and (.stdout | test(\"clone3: blocked ENOSYS\"))" <<'EOF'
probe("unshare", lambda: sc(272, 0x10000000))
probe("setns", lambda: sc(308, 0, 0))
probe("clone_newuser", lambda: sc(56, 0x10000000 | 17, 0, 0, 0, 0))
probe("clone_newnet", lambda: sc(56, 0x40000000 | 17, 0, 0, 0, 0))
probe("clone3", lambda: sc(435, 0, 0))
EOF
attack unshare-cmd sh '(.stdout | test("rc=[1-9]")) and (.stdout | test("uid=0") | not)' <<'EOF'
unshare -r id 2>&1; echo "rc=$?"
EOF
attack keyring python "$(killed keyctl add_key request_key)" <<'EOF'
probe("keyctl", lambda: sc(250, 0, 0, 0, 0, 0))
probe("add_key", lambda: sc(248, ctypes.cast(ctypes.c_char_p(b"user"), ctypes.c_void_p).value, ctypes.cast(ctypes.c_char_p(b"k"), ctypes.c_void_p).value, 0, 0, -2))
probe("request_key", lambda: sc(249, 0, 0, 0, 0))
EOF
attack bpf python "$(killed bpf)" <<'EOF'
probe("bpf", lambda: sc(321, 0, 0, 0))
EOF
attack perf_event_open python "$(killed perf_event_open)" <<'EOF'
probe("perf_event_open", lambda: sc(298, 0, 0, -1, -1, 0))
EOF
attack userfaultfd python "$(killed userfaultfd)" <<'EOF'
probe("userfaultfd", lambda: sc(323, 0))
EOF
attack io_uring python "$(killed io_uring_setup io_uring_enter)" <<'EOF'
probe("io_uring_setup", lambda: sc(425, 8, 0))
probe("io_uring_enter", lambda: sc(426, 0, 0, 0, 0, 0, 0))
EOF
attack open_by_handle_at python "$(killed open_by_handle_at name_to_handle_at)" <<'EOF'
probe("open_by_handle_at", lambda: sc(304, -100, 0, 0))
probe("name_to_handle_at", lambda: sc(303, -100, 0, 0, 0, 0))
EOF
attack kernel-admin python "$(killed kexec_load kexec_file_load reboot init_module finit_module delete_module swapon acct iopl)" <<'EOF'
probe("kexec_load", lambda: sc(246, 0, 0, 0, 0))
probe("kexec_file_load", lambda: sc(320, -1, -1, 0, 0, 0))
probe("reboot", lambda: sc(169, 0xfee1dead, 672274793, 0x4321fedc, 0))
probe("init_module", lambda: sc(175, 0, 0, 0))
probe("finit_module", lambda: sc(313, 0, 0, 0))
probe("delete_module", lambda: sc(176, 0, 0))
probe("swapon", lambda: sc(167, 0, 0))
probe("acct", lambda: sc(163, 0))
probe("iopl", lambda: sc(172, 3))
EOF
attack tiocsti python '(.stdout | test("tiocsti: blocked EPERM")) and (.stdout | test("tiocsti_hibits: killed SIGSYS"))' <<'EOF'
probe("tiocsti", lambda: sc(16, 0, 0x5412, ctypes.cast(ctypes.c_char_p(b"x"), ctypes.c_void_p).value))
probe("tiocsti_hibits", lambda: sc(16, 0, 0x5412 | (1 << 32), ctypes.cast(ctypes.c_char_p(b"x"), ctypes.c_void_p).value))
EOF
# i386 entry via int 0x80 (killed by seccomp's arch check; SIGSEGV where the kernel has 32-bit
# emulation switched off entirely) and x32 syscall numbers (bit 30 set).
attack compat-syscalls python '(.stdout | test("x32_getpid: killed SIGSYS")) and (.stdout | test("int80_getuid: killed SIG(SYS|SEGV)"))' <<'EOF'
import mmap
def int80():
    code = bytes([0xb8, 24, 0, 0, 0, 0xcd, 0x80, 0xc3])  # mov eax,24 (getuid32? i386 getuid); int 0x80; ret
    m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    m.write(code)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    return "SUCCEEDED uid=%d" % ctypes.CFUNCTYPE(ctypes.c_int)(addr)()
probe("x32_getpid", lambda: sc(0x40000000 | 39))
probe("int80_getuid", int80)
EOF

# 18-22: the filesystem
attack proc-sys-write python '(.stdout | test("SUCCEEDED") | not) and (.stdout | test("proc_sys_hostname: blocked"))' <<'EOF'
probe("proc_sys_hostname", lambda: try_open("/proc/sys/kernel/hostname", "w"))
probe("proc_sys_core_pattern", lambda: try_open("/proc/sys/kernel/core_pattern", "w"))
probe("proc_sys_vm", lambda: try_open("/proc/sys/vm/drop_caches", "w"))
probe("sysrq", lambda: try_open("/proc/sysrq-trigger", "w"))
EOF
attack sys-write python '(.stdout | test("SUCCEEDED") | not) and (.stdout | test("sys_exists: False"))' <<'EOF'
print("sys_exists:", os.path.exists("/sys"))
probe("sys_cgroup", lambda: try_open("/sys/fs/cgroup/memory/memory.limit_in_bytes", "w"))
probe("sys_kernel", lambda: try_open("/sys/kernel/uevent_helper", "w"))
EOF
attack overwrite-binaries python '(.stdout | test("SUCCEEDED") | not) and ([.stdout | scan("blocked")] | length == 5)' <<'EOF'
probe("proc_self_exe", lambda: try_open("/proc/self/exe", "wb"))
probe("python_binary", lambda: try_open(os.path.realpath(sys.executable), "ab"))
probe("python_stdlib", lambda: try_open(os.__file__, "a"))
probe("libc", lambda: try_open("/lib/x86_64-linux-gnu/libc.so.6", "ab"))
def replace():
    os.rename("/usr/bin/env", "/usr/bin/env.bak"); return "SUCCEEDED"
probe("rename_in_usr", replace)
EOF
attack setuid-binaries sh '(.stdout | test("euid_after_mount=1000")) and (.stdout | test("mount_rc=[1-9]")) and (.stdout | test("newgrp_uid=0") | not)' <<'EOF'
ls -l /usr/bin/mount /usr/bin/su
/usr/bin/mount -t tmpfs none /work 2>&1; echo "mount_rc=$?"
echo "euid_after_mount=$(id -u)"
echo "newgrp_uid=$(echo 'id -u' | /usr/bin/newgrp 2>&1)"
/usr/bin/su -c id root </dev/null 2>&1 | head -2
EOF
attack host-secrets sh '(.stdout | test("SECRET")) | not' <<EOF
for f in /etc/shadow /root/.ssh /var/lib/redis $PHX_VAR $CANARY /run /home; do
  if [ -e "\$f" ]; then echo "SECRET visible: \$f"; else echo "absent: \$f"; fi
done
EOF
attack dev-nodes sh '(.stdout | test("SUCCEEDED") | not) and (.stdout | test("devs=null urandom zero"))' <<'EOF'
echo "devs=$(ls /dev | grep -v -E '^(fd|stdin|stdout|stderr)$' | tr '\n' ' ' | sed 's/ $//')"
for d in /dev/mem /dev/kmem /dev/kmsg /dev/port /dev/sda /dev/vda /proc/kmsg /proc/kcore; do
  if head -c 1 "$d" >/dev/null 2>&1; then echo "$d: SUCCEEDED"; else echo "$d: blocked"; fi
done
EOF

# 23-29: resources
attack fork-bomb python '(.stdout | test("fork limited after [0-9]+")) and ((.stdout | capture("after (?<n>[0-9]+)").n | tonumber) < 32)' '{"pids": 16, "wall_ms": 20000}' <<'EOF'
import time
n = 0
while True:
    try:
        if os.fork() == 0:
            time.sleep(60); os._exit(0)
        n += 1
    except OSError:
        print(f"fork limited after {n}"); break
EOF
attack fork-bomb-sh sh '.duration_ms < 15000' '{"pids": 16, "wall_ms": 3000}' <<'EOF'
b() { b | b & }; b
sleep 60
EOF
attack memory-bomb python '.oom_killed == true and .signal == "SIGKILL"' '{"memory_mb": 64}' <<'EOF'
hog = []
while True:
    hog.append(bytearray(8 << 20))
EOF
attack cpu-spin python '.signal == "SIGKILL" and .timed_out == false and .cpu_ms >= 1000 and .duration_ms < 8000' '{"cpu_ms": 1000, "wall_ms": 20000}' <<'EOF'
while True:
    pass
EOF
attack sleep-past-deadline python '.timed_out == true and .signal == "SIGKILL" and (.stdout | test("started")) and .duration_ms < 4000' '{"wall_ms": 1000}' <<'EOF'
import time
print("started")
time.sleep(60)
EOF
attack daemon-outlives-parent sh '.duration_ms < 5000 and (.stdout | test("parent done"))' <<'EOF'
( setsid sh -c 'trap "" HUP TERM; sleep 30; echo daemon-survived > /tmp/d' & )
sh -c 'sleep 40 &'
echo "parent done"
EOF
attack disk-fill sh '(.stdout | test("full at [23]")) and (.stdout | test("big_rc=[1-9]")) and (.stdout | test("tmp_full=yes"))' '{"disk_mb": 8}' <<'EOF'
for i in 1 2 3 4; do dd if=/dev/zero of=/work/f$i bs=1M count=3 2>/dev/null || { echo "full at $i"; break; }; done
dd if=/dev/zero of=/tmp/t bs=1M count=3 2>/dev/null && echo tmp_full=no || echo tmp_full=yes
rm -f /work/f*
dd if=/dev/zero of=/work/big bs=1M count=64 2>/dev/null; echo "big_rc=$?"
EOF
attack output-flood sh '.truncated == true and (.stdout | length) <= 16384 and .duration_ms < 5000' '{"output_kb": 16}' <<'EOF'
yes phoenix
EOF

# 30-37: descriptors, environment, network, processes, identity
attack fd-leaks python '.stdout == "open fds: [0, 1, 2]\n"' <<'EOF'
fds = []
for fd in range(1024):
    try:
        os.fstat(fd); fds.append(fd)
    except OSError:
        pass
print("open fds:", fds)
EOF
attack env-leak sh '(.stdout | test("PHX_|KAFKA|REDIS|SECRET|PASSWORD|API_KEY") | not) and (.stdout | test("PATH="))' <<'EOF'
env
EOF
attack network-external python '(.stdout | test("SUCCEEDED") | not) and (.stdout | test("ifaces=lo\n"))' <<'EOF'
print("ifaces=" + ",".join(l.split(":")[0].strip() for l in open("/proc/self/net/dev").readlines()[2:]))
def conn(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.settimeout(3)
    try:
        s.connect((host, port)); return "SUCCEEDED"
    except OSError as e:
        return "blocked " + (errno.errorcode.get(e.errno, "") if e.errno else type(e).__name__)
probe("external_1.1.1.1", lambda: conn("1.1.1.1", 80))
probe("metadata_169.254.169.254", lambda: conn("169.254.169.254", 80))
probe("dns", lambda: socket.getaddrinfo("example.com", 80) and "SUCCEEDED")
EOF
attack host-redis-kafka python '(.stdout | test("SUCCEEDED") | not) and (.stdout | test("redis: blocked ECONNREFUSED")) and (.stdout | test("kafka: blocked ECONNREFUSED"))' <<EOF
def conn(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.settimeout(3)
    try:
        s.connect(("127.0.0.1", port)); return "SUCCEEDED"
    except OSError as e:
        return "blocked " + errno.errorcode.get(e.errno, str(e.errno))
probe("redis", lambda: conn($PHX_REDIS_PORT))
probe("kafka", lambda: conn($BROKER_PORT))
EOF
attack abstract-unix python '(.stdout | test("SUCCEEDED") | not) and (.stdout | test("abstract: blocked ECONNREFUSED"))' <<EOF
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect("\0$ABSTRACT"); return "SUCCEEDED"
    except OSError as e:
        return "blocked " + errno.errorcode.get(e.errno, str(e.errno))
probe("abstract", conn)
probe("netlink", lambda: socket.socket(16, socket.SOCK_RAW, 0) and "SUCCEEDED")
probe("packet", lambda: socket.socket(17, socket.SOCK_RAW, 0) and "SUCCEEDED")
EOF
attack kill-all sh '.stdout == "after kill -1\n"' <<'EOF'
kill -9 -1 2>/dev/null
kill -9 1 2>/dev/null
echo "after kill -1"
EOF
attack host-processes sh '(.stdout | test("nproc=[1-4]$")) and (.stdout | test("redis|devbroker|phx-") | not)' <<'EOF'
cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' ' '; echo
echo "nproc=$(ls -d /proc/[0-9]* | wc -l)"
EOF
attack hostname python '(.stdout | test("sethostname: killed SIGSYS")) and (.stdout | test("hostname=phx-sandbox"))' <<'EOF'
print("hostname=" + socket.gethostname())
probe("sethostname", lambda: sc(170, ctypes.cast(ctypes.c_char_p(b"evil"), ctypes.c_void_p).value, 4))
EOF
attack identity python '(.stdout | test("ids=1000,1000,1000,1000,1000,1000 groups=\\[\\]|groups=\\[1000\\]")) and (.stdout | test("caps=0000000000000000,0000000000000000,0000000000000000,0000000000000000,0000000000000000")) and (.stdout | test("nnp=1 seccomp=2"))' <<'EOF'
r = os.getresuid() + os.getresgid()
print("ids=" + ",".join(map(str, r)) + " groups=" + str(os.getgroups()))
st = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
print("caps=" + ",".join(st[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")))
print("nnp=%s seccomp=%s" % (st["NoNewPrivs"].strip(), st["Seccomp"].strip()))
print("uid_map=" + open("/proc/self/uid_map").read().strip())
EOF
attack namespaces-distinct python '(.stdout | test("setuid0: blocked")) and (.stdout | test("SUCCEEDED") | not)' <<'EOF'
probe("setuid0", lambda: (os.setuid(0), "SUCCEEDED")[1])
probe("write_uid_map", lambda: try_open("/proc/self/uid_map", "w"))
probe("write_cgroup", lambda: try_open("/sys/fs/cgroup/cgroup.procs", "w"))
EOF

# --- collect --------------------------------------------------------------------------------
for name in "${NAMES[@]}"; do
    r=$(reply "${JOB[$name]}" 180)
    st=$(jq -r .status <<<"$r" 2>/dev/null)
    if [ "$st" != succeeded ]; then
        not_ok "attack $name: step ran" "status [$st] $(jq -c '.steps.x.error // .error' <<<"$r" 2>/dev/null)"
        continue
    fi
    out=$(jq -c .outputs.x <<<"$r")
    got=$(jq -r "${CHECK[$name]}" <<<"$out" 2>&1)
    if [ "$got" = true ]; then ok "attack $name"; else
        not_ok "attack $name" "check ${CHECK[$name]} on ${out:0:1500}"
    fi
done

# --- the host is unchanged ------------------------------------------------------------------
sleep 1
check "host: canary file intact" intact "$(cat "$CANARY")"
check "host: abstract socket not reached" no "$([ -e "$CANARY.abstract" ] && echo yes || echo no)"
check "host: redis alive" yes "$(kill -0 "$REDIS_PID" 2>/dev/null && echo yes || echo no)"
check "host: broker alive" yes "$(kill -0 "$BROKER_PID" 2>/dev/null && echo yes || echo no)"
check "host: redis answers" PONG "$(redis ping)"
check "host: hostname unchanged" "$HOSTNAME0" "$(hostname)"
check "host: /proc/sys unchanged" "$PIDMAX0" "$(cat /proc/sys/kernel/pid_max)"
check "host: no sandbox process left" "" "$(pgrep -u "$SANDBOX_UID" | tr '\n' ' ')"
check "host: phx-exec still ready" ready "$(curl -s "http://127.0.0.1:$(cat "$PHX_VAR/run/exec.admin")/readyz" | jq -r '.status // empty' 2>/dev/null || true)"
kill "$ABSTRACT_PID" 2>/dev/null
rm -f "$CANARY" "$CANARY.abstract"
