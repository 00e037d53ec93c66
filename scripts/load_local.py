"""Bounded load test of local mode: prediction latency idle and while a dataset trains.

    .venv/bin/python scripts/load_local.py [--clients 20] [--rate 40] [--idle-seconds 20] [--train-rows 100000]

Starts its own local mode (nothing saved, loopback only), declares the sample model and waits for
version 1 in production, then sends one-record HTTPS predictions (API key) from `--clients` threads
at `--rate` requests per second in all: first `--idle-seconds` with nothing else running, then from
the moment a `--train-rows` dataset is dropped until its training finished (at most
`--max-seconds`). Only requests sent while train_model ran count for the training row; the row
before it counts from the drop (validation, then training). Latency is
measured from each request's start to its answer (a TLS connection each, as urllib makes) (a request a client could not send on time starts
late: the table says how late the clients fell). Stops by itself; prints one table.
Aim: p99 while training <= 2x p99 idle.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Sample:
    sent: float  # time.time() at the request's start
    ms: float
    status: int


@dataclass
class Load:
    """`clients` threads sending one request each every clients/rate seconds until `stop` is set."""

    api: object
    record: dict
    clients: int
    rate: float
    samples: list[Sample] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run_until(self, done: threading.Event | None, seconds: float) -> None:
        self.stop.clear()
        threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(self.clients)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (done is not None and done.is_set()):
            time.sleep(0.05)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=150)

    def _client(self, index: int) -> None:
        interval = self.clients / self.rate
        due = time.monotonic() + interval * index / self.clients  # spread the clients over one interval
        while not self.stop.is_set():
            wait = due - time.monotonic()
            if wait > 0 and self.stop.wait(wait):
                return
            self.lag_ms.append(max(0.0, -wait) * 1000)
            sent, started = time.time(), time.perf_counter()
            try:
                status = self.api.predict("churn", [self.record]).status  # type: ignore[attr-defined]
            except Exception:
                status = 0
            self.samples.append(Sample(sent, (time.perf_counter() - started) * 1000, status))
            due += interval


def summary(samples: list[Sample]) -> dict[str, float]:
    ms = sorted(s.ms for s in samples)
    if not ms:
        return {"requests": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan"), "errors": 0}
    return {
        "requests": len(ms),
        "p50": statistics.median(ms),
        "p99": ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))],
        "max": ms[-1],
        "errors": sum(1 for s in samples if s.status != 200),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second, all clients together")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument("--max-seconds", type=float, default=300.0, help="the training phase's bound")
    args = parser.parse_args()
    if not (1 <= args.clients <= 200 and 0 < args.rate <= 500 and args.idle_seconds <= 600):
        parser.error("bounded: 1-200 clients, at most 500 requests/s, at most 600 idle seconds")

    sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
    from mlops_local.client import ApiClient
    from mlops_local.demo import Demo
    from mlops_local.runtime import LocalRuntime
    from mlops_local.sample_data import churn_features, records

    workdir = Path(tempfile.mkdtemp(prefix="load-local-"))
    runtime = LocalRuntime(workdir, persist=False, schedules=False, contracts_poll_seconds=0)
    endpoints = runtime.start()
    try:
        assert endpoints.api_url.startswith("https://localhost:")  # loopback only
        demo = Demo(runtime, endpoints, args.train_rows, out=sys.stderr)
        demo.drop_dataset("churn-first.csv", 0.12, rows=2_000)
        demo.await_production(1)
        api = ApiClient(endpoints.api_url, ca_bundle=endpoints.ca_bundle, api_key=endpoints.api_key)
        record = records(churn_features(1, seed=99))[0]
        for _ in range(20):  # warm the predict path (model loaded) before measuring
            api.predict("churn", [record])

        idle = Load(api, record, args.clients, args.rate)
        idle.run_until(None, args.idle_seconds)

        trained = threading.Event()
        mark = demo.watch.mark()

        def await_training() -> None:
            try:
                demo.watch.wait_for("train_model", mark, timeout=args.max_seconds)
            finally:
                trained.set()

        busy = Load(api, record, args.clients, args.rate)
        waiter = threading.Thread(target=await_training, daemon=True)
        dropped = time.time()
        demo.drop_dataset("churn-big.csv", 0.1, seed=11, rows=args.train_rows)
        waiter.start()
        busy.run_until(trained, args.max_seconds)
        training = next(
            (i for i in demo.watch.seen[mark:] if i.function == "train_model"),
            None,
        )
        if training is None:
            print("train_model did not finish within --max-seconds", file=sys.stderr)
            return 1
        window = (training.started, training.started + training.duration_ms / 1000)
        during = [s for s in busy.samples if window[0] <= s.sent <= window[1]]
        in_flight = [s for s in busy.samples if dropped <= s.sent <= window[1]]
    finally:
        runtime.stop()

    training_row = f"training {args.train_rows:,} rows"
    rows = {
        "idle": summary(idle.samples),
        "validate+train (drop on)": summary(in_flight),
        training_row: summary(during),
    }
    print(
        f"\n{args.clients} clients, {args.rate:g} requests/s, one record per request; "
        f"training ran {training.duration_ms / 1000:.1f} s"
    )
    print(f"{'phase':<24} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6}")
    for name, row in rows.items():
        print(
            f"{name:<24} {row['requests']:>8} {row['p50']:>8.1f} {row['p99']:>8.1f} {row['max']:>8.1f} {row['errors']:>6}"
        )
    ratio = rows[training_row]["p99"] / rows["idle"]["p99"]
    lag = max(idle.lag_ms + busy.lag_ms, default=0.0)
    print(f"p99 ratio training/idle: {ratio:.2f} (aim <= 2); clients fell at most {lag:.0f} ms behind schedule")
    return 0


if __name__ == "__main__":
    sys.exit(main())
