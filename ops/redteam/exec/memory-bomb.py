# check: .oom_killed == true and .signal == "SIGKILL"
# limits: {"memory_mb": 64}
hog = []
while True:
    hog.append(bytearray(8 << 20))
