#!/usr/bin/env python3
"""The asyncio-benches workloads on CPython's asyncio.

Run by the `asyncio-benches` binary (one workload per call), or standalone:

    python3 benches/asyncio_bench.py [WORKLOAD ...] [--quick] [--n N] [--runs R] [--no-warmup]

For every measured run it prints one line on stdout that the binary parses:

    BENCH <workload> <elapsed ns> <checksum> <peak bytes or -> [<p50 ns> <p99 ns>]

(the round-trip latency percentiles for the echo workloads)
and a per-op median summary on stderr. Sizes, values and checksums match
benches/src/workload.rs; a wrong checksum is a hard error.
"""

import argparse
import asyncio
import resource
import socket
import statistics
import subprocess
import sys
import time

SLEEP = 1.0  # sleepers: seconds each task sleeps
LONG = 10.0  # timeout_ok deadline and cancel sleep
YIELDS_PER_TASK = 100
LOCK_TASKS = 4
ECHO_MSG = 64  # bytes per echo request and reply
ECHO_BUF = 1024  # the echo server's read buffer
ECHO_ROUND_TRIPS = 100_000  # full size of an echo run, over all its connections
ECHO_CONNS = {"echo_1": 1, "echo_64": 64, "echo_1000": 1000}
WORKLOADS = [
    "spawn",
    "sleepers",
    "timeout_ok",
    "timeout_bare",
    "cancel",
    "pingpong",
    "lock",
    "yield",
    *ECHO_CONNS,
]
UNITS = {
    "spawn": "ns/task",
    "sleepers": "ns/task",
    "timeout_ok": "ns/wait_for",
    "timeout_bare": "ns/iter",
    "cancel": "ns/task",
    "pingpong": "ns/round trip",
    "lock": "ns/hand-off",
    "yield": "ns/yield",
    **{w: "ns/round trip" for w in ECHO_CONNS},
}


def task_value(i):
    return 3 * i + 1


def echo_value(i):
    return 2 * i + 7


def full_size(workload):
    if workload in ECHO_CONNS:
        return ECHO_ROUND_TRIPS
    return 10_000 if workload == "yield" else 1_000_000


def ops(workload, n):
    return n * YIELDS_PER_TASK if workload == "yield" else n


def expected(workload, n):
    if workload == "cancel":
        return n
    if workload == "pingpong":
        return sum(echo_value(i) for i in range(n))
    if workload in ECHO_CONNS:
        return sum(echo_checksum(echo_message(i)) for i in range(n))
    return sum(task_value(i) for i in range(n))


def proc_status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


async def value_of(i):
    return task_value(i)


async def spawn(n):
    start = time.perf_counter_ns()
    tasks = [asyncio.create_task(value_of(i)) for i in range(n)]
    total = 0
    for t in tasks:
        total += await t
    return time.perf_counter_ns() - start, total, None


async def sleeper(i, delay):
    await asyncio.sleep(delay)
    return task_value(i)


async def sleepers(n):
    base = proc_status_bytes("VmRSS:")
    start = time.perf_counter_ns()
    tasks = [asyncio.create_task(sleeper(i, SLEEP)) for i in range(n)]
    total = 0
    for t in tasks:
        total += await t
    elapsed = time.perf_counter_ns() - start
    return elapsed, total, proc_status_bytes("VmHWM:") - base


async def one_yield(i):
    await asyncio.sleep(0)
    return task_value(i)


async def timeout_ok(n):
    start = time.perf_counter_ns()
    total = 0
    for i in range(n):
        total += await asyncio.wait_for(one_yield(i), LONG)
    return time.perf_counter_ns() - start, total, None


async def timeout_bare(n):
    start = time.perf_counter_ns()
    total = 0
    for i in range(n):
        total += await one_yield(i)
    return time.perf_counter_ns() - start, total, None


async def cancel(n):
    asleep = 0

    async def long_sleeper(i):
        nonlocal asleep
        asleep += 1
        await asyncio.sleep(LONG)
        return task_value(i)

    tasks = [asyncio.create_task(long_sleeper(i)) for i in range(n)]
    while asleep < n:
        await asyncio.sleep(0)
    start = time.perf_counter_ns()
    for t in tasks:
        t.cancel()
    cancelled = 0
    for t in tasks:
        try:
            await t
        except asyncio.CancelledError:
            cancelled += 1
    return time.perf_counter_ns() - start, cancelled, None


async def pingpong(n):
    ping, pong = asyncio.Queue(maxsize=1), asyncio.Queue(maxsize=1)
    start = time.perf_counter_ns()

    async def echo():
        for _ in range(n):
            await pong.put(echo_value(await ping.get()))

    async def pinger():
        total = 0
        for i in range(n):
            await ping.put(i)
            total += await pong.get()
        return total

    echo_task = asyncio.create_task(echo())
    total = await asyncio.create_task(pinger())
    await echo_task
    return time.perf_counter_ns() - start, total, None


def share(n, parts, t):
    return n // parts + (1 if t < n % parts else 0)


def lock_share(n, t):
    return share(n, LOCK_TASKS, t)


async def lock(n):
    lk = asyncio.Lock()
    state = [0, 0]  # next index, checksum

    async def worker(k):
        for _ in range(k):
            async with lk:
                i = state[0]
                state[0] += 1
                state[1] += task_value(i)
                await asyncio.sleep(0)  # hold the lock across a suspension

    start = time.perf_counter_ns()
    tasks = [asyncio.create_task(worker(lock_share(n, t))) for t in range(LOCK_TASKS)]
    for t in tasks:
        await t
    return time.perf_counter_ns() - start, state[1], None


async def yielder(i):
    for _ in range(YIELDS_PER_TASK):
        await asyncio.sleep(0)
    return task_value(i)


async def yielders(n):
    start = time.perf_counter_ns()
    tasks = [asyncio.create_task(yielder(i)) for i in range(n)]
    total = 0
    for t in tasks:
        total += await t
    return time.perf_counter_ns() - start, total, None


_BODY_BYTES = bytes(range(256)) * 2


def echo_message(i):
    """Request i: i little-endian, then the bytes i, i + 1, ... modulo 256."""
    start = i % 256
    return i.to_bytes(8, "little") + _BODY_BYTES[start : start + ECHO_MSG - 8]


def echo_checksum(msg):
    return int.from_bytes(msg[:8], "little") + sum(msg)


def percentile(sorted_ns, pct):
    """Nearest rank, as the binary computes it."""
    rank = max(-(-len(sorted_ns) * pct // 100), 1)
    return sorted_ns[rank - 1]


def ensure_open_files(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            sys.exit(f"{need} open files needed, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def echo_server(loop, conn):
    buf = bytearray(ECHO_BUF)
    with conn:
        while True:
            got = await loop.sock_recv_into(conn, buf)
            if not got:
                return
            await loop.sock_sendall(conn, memoryview(buf)[:got])


async def echo_client(loop, conn, c, conns, n):
    total = 0
    times = []
    reply = bytearray(ECHO_MSG)
    view = memoryview(reply)
    with conn:
        for k in range(share(n, conns, c)):
            msg = echo_message(c + conns * k)
            sent = time.perf_counter_ns()
            await loop.sock_sendall(conn, msg)
            got = 0
            while got < ECHO_MSG:
                r = await loop.sock_recv_into(conn, view[got:])
                if not r:
                    raise ConnectionError("end of file before the whole echo")
                got += r
            times.append(time.perf_counter_ns() - sent)
            if reply != msg:
                raise ValueError("the echo differs from the request")
            total += echo_checksum(reply)
    return total, times


async def echo(n, conns):
    """conns loopback connections on the loop's own socket methods, set up
    before the clock starts; one client task per connection."""
    ensure_open_files(2 * conns + 64)
    loop = asyncio.get_running_loop()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    listener.setblocking(False)
    addr = listener.getsockname()
    clients, servers = [], []
    with listener:
        for _ in range(conns):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            client.setblocking(False)
            await loop.sock_connect(client, addr)
            conn, _ = await loop.sock_accept(listener)
            for s in (client, conn):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            servers.append(asyncio.create_task(echo_server(loop, conn)))
            clients.append(client)
    start = time.perf_counter_ns()
    tasks = [asyncio.create_task(echo_client(loop, s, c, conns, n)) for c, s in enumerate(clients)]
    total = 0
    times = []
    for t in tasks:
        part, part_times = await t
        total += part
        times.extend(part_times)
    elapsed = time.perf_counter_ns() - start
    for t in servers:
        await t
    times.sort()
    return elapsed, total, None, (percentile(times, 50), percentile(times, 99))


def echo_body(conns):
    return lambda n: echo(n, conns)


BODIES = {
    "spawn": spawn,
    "sleepers": sleepers,
    "timeout_ok": timeout_ok,
    "timeout_bare": timeout_bare,
    "cancel": cancel,
    "pingpong": pingpong,
    "lock": lock,
    "yield": yielders,
    **{w: echo_body(conns) for w, conns in ECHO_CONNS.items()},
}


def run_once(workload, n):
    """One run on a fresh event loop: (elapsed ns, checksum, peak bytes or None,
    (p50 ns, p99 ns) or None). sleepers runs in a child process for its peak RSS."""
    if workload == "sleepers":
        out = subprocess.run(
            [sys.executable, __file__, "--child", workload, "--n", str(n)],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout.split()
        return int(out[0]), int(out[1]), None if out[2] == "-" else int(out[2]), None
    result = asyncio.run(BODIES[workload](n))
    return result if len(result) == 4 else (*result, None)


def bench(workload, n, runs, warmup, summary):
    samples = []
    in_child = workload == "sleepers"
    for r in range(runs + (1 if warmup and not in_child else 0)):
        elapsed, checksum, peak, latency = run_once(workload, n)
        if checksum != expected(workload, n):
            sys.exit(f"{workload}: checksum {checksum}, expected {expected(workload, n)}")
        if warmup and not in_child and r == 0:
            continue
        line = f"BENCH {workload} {elapsed} {checksum} {'-' if peak is None else peak}"
        if latency is not None:
            line += f" {latency[0]} {latency[1]}"
        print(line, flush=True)
        samples.append((elapsed, peak, latency))
    if not summary:
        return
    floor = SLEEP * 1e9 if workload == "sleepers" else 0
    per_op = statistics.median(max(e - floor, 0) / ops(workload, n) for e, _, _ in samples)
    line = f"{workload:<13} n={n:<8} {per_op:10.1f} {UNITS[workload]}"
    peaks = [p for _, p, _ in samples if p is not None]
    if peaks:
        line += f", {statistics.median(peaks) / n:.0f} B/task peak"
    latencies = [lat for _, _, lat in samples if lat is not None]
    if latencies:
        p50 = statistics.median(lat[0] for lat in latencies) / 1000
        p99 = statistics.median(lat[1] for lat in latencies) / 1000
        line += f", {1e9 / per_op:.0f} req/s, p50 {p50:.1f} us, p99 {p99:.1f} us"
    print(line, file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workloads", nargs="*", metavar="WORKLOAD", help=" ".join(WORKLOADS))
    parser.add_argument("--quick", action="store_true", help="sizes / 100, one run, no warm-up")
    parser.add_argument("--n", type=int, help="size (default: the workload's full size)")
    parser.add_argument("--runs", type=int, help="measured runs (default 5, 1 with --quick)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the discarded first run")
    parser.add_argument(
        "--machine", action="store_true", help="as run by the binary: no summary, no added timeout_bare"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        workload = args.workloads[0]
        elapsed, checksum, peak = asyncio.run(BODIES[workload](args.n))
        print(elapsed, checksum, "-" if peak is None else peak)
        return
    workloads = args.workloads or WORKLOADS
    for w in workloads:
        if w not in BODIES:
            parser.error(f"unknown workload {w!r}")
    if not args.machine and "timeout_ok" in workloads and "timeout_bare" not in workloads:
        workloads.insert(workloads.index("timeout_ok") + 1, "timeout_bare")
    runs = args.runs or (1 if args.quick else 5)
    warmup = not (args.quick or args.no_warmup)
    for w in workloads:
        n = args.n or full_size(w) // (100 if args.quick else 1)
        bench(w, n, runs, warmup, summary=not args.machine)


if __name__ == "__main__":
    main()
