# check: .timed_out == true and .signal == "SIGKILL" and (.stdout | test("started")) and .duration_ms < 15000
# limits: {"wall_ms": 5000}
import time
print("started")
time.sleep(60)
