# check: (.stdout | test("fork limited after [0-9]+")) and ((.stdout | capture("after (?<n>[0-9]+)").n | tonumber) < 32)
# limits: {"pids": 16, "wall_ms": 20000}
import time
n = 0
while True:
    try:
        if os.fork() == 0:
            time.sleep(60); os._exit(0)
        n += 1
    except OSError:
        print(f"fork limited after {n}"); break
