"""A 3-node cluster loses a broker under steady load: the ingest and two workers carry
on, nothing acknowledged is lost, and the cluster heals when the node comes back.

The cluster is the test's own (`Cluster(tmp)`: its own data and ports, the same jars),
never the shared broker: the test SIGKILLs one of its nodes. The node killed is the
active controller when it also leads raw-events partitions, else the node leading the
most raw-events partitions: a controller failover and partition leader elections at once.

Topics have replication factor 3 and min.insync.replicas 2, and every producer uses
acks=all, so a 200 means two brokers had the record: losing one loses nothing.

Figures are printed; waits are bounded, and what they wait for is asserted, not how long
it took.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.chaos.conftest import ChaosStack
from tests.chaos.load import Load, LoadResult, Verdict, drain, verdict
from tests.integration.conftest import write_config
from workers import topics
from workers.cli.decisions import Collector
from workers.devstack.cluster import Cluster, replication
from workers.devstack.processes import Stack, free_port
from workers.paths import cache_dir

pytestmark = [pytest.mark.chaos, pytest.mark.cluster]

NODES = 3
RATE = 200.0  # requests/s; three JVMs, two workers and the ingest share the CI's cores
WARMUP_S = 10.0
MIN_OUTAGE_S = 20.0
STEADY_S = 3.0  # the node stays down until the ingest's answers were all 200 this long
MAX_OUTAGE_S = 150.0
AFTER_RESTART_S = 10.0
HEAL_TIMEOUT_S = 180.0
DRAIN_TIMEOUT_S = 240.0


@dataclass
class ClusterStack:
    cluster: Cluster
    cs: ChaosStack


@pytest.fixture
def cluster_stack(tmp_path: Path) -> Iterator[ClusterStack]:
    cluster = Cluster(tmp_path / "kafka")
    prefix = f"cl{secrets.token_hex(3)}."
    logs = cache_dir() / "test-logs" / prefix.rstrip(".")
    stack = Stack(logs, "", prefix)
    try:
        cluster.start(NODES)
        stack.bootstrap = cluster.bootstrap
        rf, min_isr = replication(NODES)
        asyncio.run(topics.apply(cluster.bootstrap, topics.load_specs(), prefix, rf, min_isr))
        sec = {"load": f"cl-load-{secrets.token_hex(8)}", "web": f"cl-web-{secrets.token_hex(8)}"}
        # The worker's own Faust topics take the replication factor from the config.
        config = write_config(tmp_path / "eventguard.yaml", [
            {"id": "load", "server_secret": sec["load"]},
            {"id": "web", "client_secret": sec["web"], "origins": ["*.shop.test"]},
        ], kafka={"replication_factor": rf, "min_insync_replicas": min_isr})
        cs = ChaosStack(cluster.bootstrap, prefix, config, logs, stack, free_port(), sec)
        print(f"\n[cluster] {cluster.bootstrap} prefix {prefix} logs {logs}")
        yield ClusterStack(cluster, cs)
    finally:
        stack.stop()
        cluster.stop(kill=True)


async def _admin(bootstrap: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    return admin


async def _replication_of(bootstrap: str, topic: str) -> tuple[set[int], str]:
    """(replica counts of the topic's partitions, its min.insync.replicas)."""
    admin = await _admin(bootstrap)
    try:
        # A broker learns of a new topic from the metadata log a moment after the one
        # that created it.
        # The admin client may ask any broker, so both reads retry until it knows.
        for _ in range(60):
            [described] = await admin.describe_topics([topic])
            if described["partitions"]:
                break
            await asyncio.sleep(0.5)
        resource = ConfigResource(ConfigResourceType.TOPIC, topic)
        for _ in range(60):
            response = await admin.describe_configs([resource])
            error_code, error_message, *_, entries = response[0].resources[0]
            configs = {e[0]: e[1] for e in entries}
            if not error_code and "min.insync.replicas" in configs:
                break
            await asyncio.sleep(0.5)
        assert "min.insync.replicas" in configs, (error_code, error_message, sorted(configs))
        return {len(p["replicas"]) for p in described["partitions"]}, configs["min.insync.replicas"]
    finally:
        await admin.close()


async def _raw_events_leaders(bootstrap: str, topic: str) -> Counter[int]:
    admin = await _admin(bootstrap)
    try:
        [described] = await admin.describe_topics([topic])
        return Counter(int(p["leader"]) for p in described["partitions"])
    finally:
        await admin.close()


async def _under_replicated(bootstrap: str) -> int:
    """Partitions of every topic in the cluster whose ISR lacks a replica."""
    admin = await _admin(bootstrap)
    try:
        names = await admin.list_topics()
        described = await admin.describe_topics(names)
        return sum(1 for t in described for p in t["partitions"]
                   if len(p["isr"]) < len(p["replicas"]))
    finally:
        await admin.close()


async def _heal(bootstrap: str) -> tuple[float | None, int]:
    """Seconds until no partition is under-replicated (None: not within HEAL_TIMEOUT_S),
    and the count when the wait began."""
    started = time.monotonic()
    first = last = await _under_replicated(bootstrap)
    while last and time.monotonic() - started < HEAL_TIMEOUT_S:
        await asyncio.sleep(0.5)
        last = await _under_replicated(bootstrap)
    return (None if last else time.monotonic() - started), first


@dataclass
class Outage:
    node: int
    why: str
    killed: float = 0.0  # monotonic
    killed_wall: float = 0.0
    restarting: float = 0.0
    back: float = 0.0
    steady: bool = False  # ended with the ingest answering only 200s and both workers deciding
    deciding: set[str] = field(default_factory=set)  # workers that decided requests sent after
    under_replicated_while_down: int = 0


@dataclass
class Run:
    outage: Outage
    result: LoadResult
    start: float  # monotonic time the load began
    verdict: Verdict
    healed_s: float | None
    under_at_restart: int


class PostKill:
    """Which workers decided a request the ingest received after the kill."""

    def __init__(self, col: Collector, since_wall: float) -> None:
        self.col, self.since = col, since_wall
        self._cursor = 0
        self.workers: set[str] = set()

    def poll(self) -> set[str]:
        raw = self.col.raw
        end = len(raw)
        for msg in raw[self._cursor:end]:
            if not (msg.topic.endswith("audit-log") and msg.value):
                continue
            audit = orjson.loads(msg.value)
            decided = datetime.fromisoformat(str(audit["ts"])).timestamp()
            if decided - (audit.get("lag_ms") or 0) / 1000 > self.since:
                self.workers.add(str(audit["worker"]))
        self._cursor = end
        return self.workers


def _steady(res: LoadResult, start: float, now: float) -> bool:
    """The last STEADY_S whole seconds of requests were all answered 200."""
    last = int(now - start) - 2  # a second whose requests may still be in flight is left out
    window = [res.per_second.get(s, Counter()) for s in range(last - int(STEADY_S) + 1, last + 1)]
    return all(c and set(c) == {"200"} for c in window)


async def _choose_victim(cluster: Cluster, raw_events: str) -> tuple[int, str]:
    leaders = await _raw_events_leaders(cluster.bootstrap, raw_events)
    controller = await asyncio.to_thread(cluster.quorum_leader)
    if controller is not None and leaders[controller]:
        return controller, (f"the active controller, leading {leaders[controller]} of "
                            f"{sum(leaders.values())} raw-events partitions")
    node, n = leaders.most_common(1)[0]
    return node, (f"leading {n} of {sum(leaders.values())} raw-events partitions "
                  f"(the active controller is node {controller})")


@pytest.mark.timeout(900)
def test_a_cluster_loses_a_broker_under_load(cluster_stack: ClusterStack) -> None:
    cluster, cs = cluster_stack.cluster, cluster_stack.cs
    rf, min_isr = replication(NODES)
    copies, topic_min_isr = asyncio.run(_replication_of(cs.bootstrap, cs.prefix + "raw-events"))
    assert copies == {rf} and topic_min_isr == str(min_isr), (copies, topic_min_isr)
    cs.ingest()
    workers = [cs.worker("worker-a"), cs.worker("worker-b")]

    async def go() -> Run:
        t0 = time.monotonic()
        seen = await cs.wait_deciding(workers, distinct_workers=2, timeout_s=240)
        print(f"[cluster] both workers deciding after {time.monotonic() - t0:.1f}s: "
              f"{sorted(seen)}")
        node, why = await _choose_victim(cluster, cs.prefix + "raw-events")
        outage = Outage(node, why)
        # Until the controller fences the dead node, acks=all writes wait for it: requests
        # pile up for the ingest's send timeout, and a client that caps them would skip.
        load = Load(cs, RATE, concurrency=int(RATE * 20))
        stop = asyncio.Event()

        async def chaos(col: Collector) -> None:
            try:
                await asyncio.sleep(WARMUP_S)
                outage.killed, outage.killed_wall = time.monotonic(), time.time()
                await asyncio.to_thread(cluster.stop_node, node, 10.0, True)
                print(f"[cluster] SIGKILLed node {node}, {why}, "
                      f"{outage.killed - load._start:.1f}s into the load")
                post = PostKill(col, outage.killed_wall)
                while time.monotonic() - outage.killed < MAX_OUTAGE_S:
                    await asyncio.sleep(0.5)
                    deciding = len(post.poll()) >= len(workers)
                    if (time.monotonic() - outage.killed >= MIN_OUTAGE_S and deciding
                            and _steady(load.result, load._start, time.monotonic())):
                        outage.steady = True
                        break
                outage.deciding = set(post.workers)
                outage.under_replicated_while_down = await _under_replicated(cs.bootstrap)
                outage.restarting = time.monotonic()
                await asyncio.to_thread(cluster.start_node, node)
                outage.back = time.monotonic()
                print(f"[cluster] node {node} down {outage.restarting - outage.killed:.1f}s, "
                      f"{outage.back - outage.restarting:.1f}s to start again")
                await asyncio.sleep(AFTER_RESTART_S)
            finally:
                stop.set()

        async with cs.collector() as col:
            result, _ = await asyncio.gather(load.run(MAX_OUTAGE_S + 300, stop), chaos(col))
            healed_s, under_at_restart = await _heal(cs.bootstrap)
            drained_s, left = await drain(col, result.ok, DRAIN_TIMEOUT_S)
            await asyncio.sleep(3)  # late copies of the last decisions
            v = verdict(col, result.ok)
        print(f"[cluster] {result.summary()}")
        print(f"[cluster] 200s per second (/other!): {result.timeline()}")
        print(f"[cluster] drain: {drained_s:.1f}s after the load, {len(left)} left")
        print(f"[cluster] {v.summary()}")
        return Run(outage, result, load._start, v, healed_s, under_at_restart)

    run = asyncio.run(go())
    outage, result, start, v = run.outage, run.result, run.start, run.verdict
    lost, healed_s, under_at_restart = v.lost, run.healed_s, run.under_at_restart
    kill_sec = int(outage.killed - start)
    after_kill = [(s, c) for s, c in sorted(result.per_second.items()) if s >= kill_sec]
    bad_secs = [s for s, c in after_kill if set(c) - {"200"} and s < outage.restarting - start]
    refused = sum(c["503"] for _, c in after_kill)
    ok_after = sum(c["200"] for s, c in after_kill if s < outage.restarting - start)
    other: Counter[str] = Counter()
    for _, c in after_kill:
        other.update({k: n for k, n in c.items() if k not in ("200", "503")})
    recover_s = (bad_secs[-1] + 1 - (outage.killed - start)) if bad_secs else 0.0
    print(f"[cluster] figures: node {outage.node} ({outage.why}) SIGKILLed; "
          f"200s={len(result.ok)} 503s={result.statuses['503']} (after the kill: {refused}) "
          f"other={dict(other)} lost={len(lost)} duplicated_ids={len(v.duplicated)} "
          f"extra_audit_records={v.extra_audit_records}; ingest back to all-200 "
          f"{recover_s:.1f}s after the kill; {outage.under_replicated_while_down} partitions "
          f"under-replicated while the node was down, {under_at_restart} when it was back, "
          f"0 {healed_s if healed_s is None else round(healed_s, 1)}s later "
          f"({outage.back - outage.restarting + (healed_s or 0):.1f}s after `start --broker`)"
          f"; workers deciding "
          f"requests sent after the kill: {sorted(outage.deciding)}")

    assert outage.steady, (
        f"within {MAX_OUTAGE_S:.0f}s of the kill the ingest did not answer only 200s for "
        f"{STEADY_S:.0f}s or fewer than 2 workers decided ({sorted(outage.deciding)}); "
        f"see {cs.logs}")
    assert ok_after > 0, "no 200 while the node was down"
    assert not other, f"answers other than 200 and 503 after the kill: {other}"
    assert not lost, f"{len(lost)} request ids got a 200 but no decision: {lost[:5]}"
    assert not v.conflicting, f"conflicting decisions: {list(v.conflicting.items())[:5]}"
    assert not v.wrong, f"wrong decisions: {list(v.wrong.items())[:5]}"
    assert healed_s is not None, f"still under-replicated {HEAL_TIMEOUT_S:.0f}s after the restart"
    for w in workers:
        assert w.alive(), f"{w.name} exited:\n{w.tail()}"
    assert cs.ingest_proc is not None and cs.ingest_proc.alive(), "the ingest exited"
