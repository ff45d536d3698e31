"""The Python bindings from two threads (make check-tsan runs this under ThreadSanitizer,
the runtime preloaded into the interpreter): two attacks on two built-in nets at once, each
thread with its own handles; ctypes releases the GIL during the C calls, so the library's
code runs in both threads together. The results must equal a run in one thread."""
import sys
import threading

import numpy as np

import foolc

ARCH = "input c=1 h=8 w=8; conv2d out=4 k=3 p=1; relu; flatten; dense out=5"


def job(seed, x, y, out, key):
    with foolc.Net(ARCH, seed=seed) as net:
        res = foolc.Attack("pgd-linf", steps=5)(net, x, y, seed=3)
        out[key] = (res.distance.copy(), res.x_adv.copy(), res.success.copy())


def main():
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 1, (6, 1, 8, 8)).astype(np.float32)
    labels = {}
    for seed in (1, 2):
        with foolc.Net(ARCH, seed=seed) as net:
            labels[seed] = np.asarray(net.model().logits(x)).argmax(axis=1).astype(np.int32)
    alone = {}
    for seed in (1, 2):
        job(seed, x, labels[seed], alone, seed)
    for _ in range(3):
        both = {}
        threads = [threading.Thread(target=job, args=(s, x, labels[s], both, s)) for s in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in (1, 2):
            for a, b in zip(alone[s], both[s]):
                if not np.array_equal(a, b):
                    print(f"threads.py: net {s}: results differ between one and two threads")
                    return 1
    print("threads.py: two threads give the one-thread bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
