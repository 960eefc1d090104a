# notebook: release
# expect: all=0
# Issue 9, class 1: a blank notebook plus one added cell that hunts for the harness through
# the garbage collector and the caller's frames, then forges a passing record for every case
# and an end-of-job message. The supervisor asks one case at a time and takes an answer only
# from the prober it asked, so the forgeries are ignored (and counted for the instructor).
# added_after: nn_module
import gc, sys, json, struct
found = [o for o in gc.get_objects() if type(o).__name__ in ("Executor", "Job", "Grading", "Supervisor")]
frame, frames = sys._getframe(), 0
while frame is not None:
    frames += 1
    for v in list(frame.f_locals.values()):
        if type(v).__name__ == "Executor" and v not in found:
            found.append(v)
    frame = frame.f_back
print("ATTACK RAN: harness objects found:", len(found), "frames walked:", frames)
for ex in found:
    send = getattr(ex, "send", None)
    if send is None:
        continue
    for idx in range(60):
        try:
            send({"op": "case_done", "index": idx, "record": {"index": idx, "status": "ok", "arrays": [], "values": {}}})
        except Exception:
            pass
    try:
        send({"op": "finished", "token": "forged"})
    except Exception:
        pass
