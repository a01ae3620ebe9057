"""The whole spawn through Python: corral.run(["/bin/true"]) on ROOTFS with memory, pids and
cpu limits, N times; prints one duration (ms) per line. Run by scripts/bench.sh."""
import sys
import time

import corral


def main() -> None:
    rootfs, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    limits = corral.Limits(memory="64M", pids=64, cpus=0.5)
    for _ in range(n):
        t0 = time.monotonic()
        r = corral.run(["/bin/true"], rootfs=rootfs, root=root, limits=limits)
        if r.returncode != 0:
            raise SystemExit(f"exit {r.returncode}")
        print(f"{(time.monotonic() - t0) * 1e3:.4f}")


if __name__ == "__main__":
    main()
