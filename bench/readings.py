"""Benchmarks of reading intake, on PostgreSQL, against a region built by bench/region.py.

    python bench/region.py --accounts 100000                 # once: 100,000 meters
    python bench/readings.py pipeline --readings 200000       # ingest() in-process, 1,000 per call
    python bench/readings.py http --readings 200000           # POST /api/v1/readings, 1,000 per request
    python bench/readings.py mqtt --readings 1000000          # one reading per message, QoS 1
    python bench/readings.py mqtt --readings 1000000 --consumers 2     # shared subscription
    python bench/readings.py mqtt --readings 1000000 --per-message 100 # gateways

Each run empties the readings first. MQTT runs use a broker of their own (mosquitto on port
18830, configured for volume: see docs/iot.md), because Mosquitto's defaults drop messages queued
beyond 1,000. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.client import HTTPConnection
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
BROKER_PORT = 18830


def database_url(args: argparse.Namespace) -> str:
    server: str = args.server
    return server.rsplit("/", 1)[0] + f"/{args.database}"


def reset(url: str) -> int:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE readings, quarantined_readings, consumption, outbox, dead_letters"))
        # The bench server runs with autovacuum off; without statistics the planner scans all
        # meters for each batch's lock. Autovacuum would have analysed them after the bulk load.
        connection.execute(text("ANALYZE meters"))
        meters = connection.execute(text("SELECT count(*) FROM meters WHERE serial LIKE 'M%'")).scalar_one()
    # Each connection's temporary scratch table (metering/fastpath.py) leaves dead rows in the
    # catalogs when it closes; without autovacuum they pile up over runs and slow every query.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM pg_attribute, pg_class, pg_type, pg_depend"))
    engine.dispose()
    return int(meters)


def stored(url: str) -> int:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM readings")).scalar_one()
    engine.dispose()
    return int(count)


def readings(total: int, meters: int) -> Iterator[dict[str, str]]:
    """Reading i is for meter i mod M, an hour after that meter's previous one."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=total // meters + 2)
    for i in range(total):
        hours = i // meters
        yield {
            "serial": f"M{i % meters:08d}",
            "ts": (start + timedelta(hours=hours)).isoformat(),
            "value": str(Decimal(100) + Decimal(hours) / 100),
        }


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def report(what: str, count: int, seconds: float, url: str) -> None:
    print(
        f"{what}: {count:,} readings in {seconds:.1f} s = {count / seconds:,.0f} readings/s; "
        f"stored {stored(url):,} ({machine()})"
    )


# --- in-process ----------------------------------------------------------------------------------


def pipeline(args: argparse.Namespace) -> None:
    from zhkh.core.db import create_db_engine, session_scope
    from zhkh.metering.intake import IncomingReading, ingest

    url = database_url(args)
    meters = reset(url)
    engine = create_db_engine(url)
    items = [
        IncomingReading(datetime.fromisoformat(r["ts"]), Decimal(r["value"]), 1, r["serial"], source="bench")
        for r in readings(args.readings, meters)
    ]
    started = time.perf_counter()
    for begin in range(0, len(items), args.batch):
        with session_scope(engine) as session:
            ingest(session, items[begin : begin + args.batch])
    report(f"pipeline, {args.batch} per call", len(items), time.perf_counter() - started, url)


# --- HTTP ----------------------------------------------------------------------------------------


@contextmanager
def served(url: str, workers: int) -> Iterator[tuple[str, str]]:
    env = os.environ | {"ZHKH_DATABASE_URL": url}
    token = (
        subprocess.run(
            [
                sys.executable,
                "-m",
                "zhkh",
                "token",
                "create",
                "--name",
                f"bench-{time.time_ns()}",
                "--scope",
                "readings:write",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = 18000
    process = subprocess.Popen(
        [sys.executable, "-m", "zhkh", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base, token
    finally:
        process.terminate()
        process.wait(30)


def http(args: argparse.Namespace) -> None:
    url = database_url(args)
    meters = reset(url)
    all_readings = [
        {"serial": r["serial"], "taken_at": r["ts"], "value": r["value"]} for r in readings(args.readings, meters)
    ]
    bodies = [
        json.dumps({"readings": all_readings[i : i + args.batch]}).encode()
        for i in range(0, len(all_readings), args.batch)
    ]
    with served(url, args.workers) as (base, token):
        queue = list(reversed(bodies))
        lock = threading.Lock()
        failures: list[str] = []

        def post() -> None:
            # http.client, not httpx: the client shares the two cores with the server, and its
            # response parsing is much lighter.
            host, port = base.removeprefix("http://").split(":")
            connection = HTTPConnection(host, int(port), timeout=120)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            while True:
                with lock:
                    if not queue:
                        connection.close()
                        return
                    body = queue.pop()
                connection.request("POST", "/api/v1/readings", body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                if args.fresh_connections:
                    connection.close()
                if response.status != 200:
                    failures.append(answer[:200].decode(errors="replace"))

        started = time.perf_counter()
        threads = [threading.Thread(target=post) for _ in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
    report(
        f"HTTP, {args.batch} per request, {args.workers} server worker(s), {args.clients} clients",
        len(all_readings),
        seconds,
        url,
    )
    if failures:
        print(f"  {len(failures)} failed requests, first: {failures[0]}")


# --- MQTT ----------------------------------------------------------------------------------------


@contextmanager
def broker() -> Iterator[None]:
    """A Mosquitto of our own, tuned for volume, without persistence."""
    folder = Path(tempfile.mkdtemp(prefix="zhkh-bench-broker-"))
    config = folder / "mosquitto.conf"
    config.write_text(
        f"listener {BROKER_PORT} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_inflight_messages 0\nmax_queued_messages 0\nmax_queued_bytes 0\n"
    )
    process = subprocess.Popen(["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        yield
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def publish(messages: list[bytes], topic: str) -> float:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{time.time_ns()}")
    client.max_inflight_messages_set(1000)
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect("127.0.0.1", BROKER_PORT)
    client.loop_start()
    connected.wait(10)
    started = time.perf_counter()
    sent: list[mqtt.MQTTMessageInfo] = []
    for number, payload in enumerate(messages):
        if number >= 30_000:  # message ids are 16 bits: never have more than 30,000 outstanding
            sent[number - 30_000].wait_for_publish(600)
        sent.append(client.publish(topic, payload, qos=1))
    if sent:
        sent[-1].wait_for_publish(600)
    seconds = time.perf_counter() - started
    client.loop_stop()
    client.disconnect()
    return seconds


def mqtt(args: argparse.Namespace) -> None:
    url = database_url(args)
    meters = reset(url)
    items = list(readings(args.readings, meters))
    if args.per_message == 1:
        messages = [json.dumps(r).encode() for r in items]
    else:
        messages = [
            json.dumps({"readings": items[i : i + args.per_message]}).encode()
            for i in range(0, len(items), args.per_message)
        ]
    env = os.environ | {"ZHKH_DATABASE_URL": url}
    group = ["--group", "bench"] if args.consumers > 1 else []

    logs = Path(tempfile.mkdtemp(prefix="zhkh-bench-consumers-"))

    def consumer(n: int) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "zhkh", "ingest", "mqtt", "--broker", f"mqtt://127.0.0.1:{BROKER_PORT}"]
        command += [
            "--route",
            "bench/#=platform",
            "--client-id",
            f"bench-consumer-{n}",
            "--batch-size",
            str(args.batch),
        ]
        log = logs / f"consumer-{n}-{time.time_ns()}.log"
        with log.open("wb") as output:  # a file, not a pipe nobody reads: a full pipe would block it
            process = subprocess.Popen([*command, *group], env=env, stdout=output, stderr=subprocess.STDOUT)
        while "subscribed to" not in log.read_text(errors="replace"):
            if process.poll() is not None:
                raise SystemExit(f"consumer {n} exited: {log.read_text()}")
            time.sleep(0.1)
        return process

    def stop(process: subprocess.Popen[bytes]) -> None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    with broker():
        # The consumers' persistent sessions exist first; then the messages are published while
        # they are away (the broker keeps them), so the timing is the consumers' alone, not
        # shared with a publisher on the same two cores. --live publishes while they consume.
        consumers = [consumer(n) for n in range(args.consumers)]
        if not args.live:
            for process in consumers:
                stop(process)
        publishing = publish(messages, "bench/readings")
        started = time.perf_counter()
        if not args.live:
            consumers = [consumer(n) for n in range(args.consumers)]
            started = time.perf_counter()
        else:
            started -= publishing
        while stored(url) < len(items) and time.perf_counter() - started < 3600:
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        for process in consumers:
            stop(process)
    shutil.rmtree(logs, ignore_errors=True)
    mode = "published while consuming" if args.live else "queued at the broker, then consumed"
    what = f"MQTT QoS 1, {args.per_message} reading(s) per message, {args.consumers} consumer(s), {mode}"
    report(what, len(items), seconds, url)
    print(f"  the publisher needed {publishing:.1f} s ({len(messages) / publishing:,.0f} messages/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["pipeline", "http", "mqtt"])
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="HTTP: server worker processes")
    parser.add_argument("--clients", type=int, default=4, help="HTTP: concurrent client connections")
    parser.add_argument("--fresh-connections", action="store_true", help="HTTP: a new connection per request")
    parser.add_argument("--consumers", type=int, default=1, help="MQTT: consumer processes")
    parser.add_argument("--per-message", type=int, default=1, help="MQTT: readings per message")
    parser.add_argument("--live", action="store_true", help="MQTT: publish while the consumers run")
    parser.add_argument(
        "--server", default=os.environ.get("ZHKH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--database", default="zhkh_bench_metering")
    args = parser.parse_args()
    {"pipeline": pipeline, "http": http, "mqtt": mqtt}[args.mode](args)


if __name__ == "__main__":
    main()
