# check: .timed_out == true and .signal == "SIGKILL" and (.stdout | test("started")) and .duration_ms < 4000
# limits: {"wall_ms": 1000}
import time
print("started")
time.sleep(60)
