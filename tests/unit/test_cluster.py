"""The local cluster's node properties, without starting a JVM."""

from __future__ import annotations

from pathlib import Path

from workers.cli.main import build_parser
from workers.devstack.broker import Broker
from workers.devstack.cluster import Cluster, replication


def _props(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


def test_every_node_knows_every_voter_and_replicates_three_times(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    layout = cluster._make(3)
    node = cluster.node(2)
    props = _props(node._write_properties(node.spec.port, node.spec.controller_port))
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == ",".join(
        f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in layout.nodes)
    assert props["listeners"] == (f"PLAINTEXT://127.0.0.1:{node.spec.port},"
                                  f"CONTROLLER://127.0.0.1:{node.spec.controller_port}")
    assert props["offsets.topic.replication.factor"] == "3"
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["transaction.state.log.min.isr"] == "2"
    assert node._cluster_id() == layout.cluster_id == cluster.node(1)._cluster_id()
    assert len({p for n in layout.nodes for p in (n.port, n.controller_port)}) == 6
    # The layout is kept: the same ports and id come back.
    assert Cluster(tmp_path).layout() == layout
    assert cluster.status() == {1: None, 2: None, 3: None}


def test_the_single_broker_is_unchanged(tmp_path: Path) -> None:
    props = _props(Broker(tmp_path)._write_properties(9092, 9093))
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["offsets.topic.replication.factor"] == "1"
    assert "min.insync.replicas" not in props


def test_replication_for_a_cluster_size() -> None:
    assert [replication(n) for n in (1, 2, 3, 5)] == [(1, 1), (2, 2), (3, 2), (3, 2)]


def test_no_cluster(tmp_path: Path) -> None:
    assert Cluster(tmp_path).status() == {} and not Cluster(tmp_path).running()


def test_kafka_command_line() -> None:
    args = build_parser().parse_args(["kafka", "start", "--brokers", "3"])
    assert (args.action, args.brokers, args.broker) == ("start", 3, None)
    args = build_parser().parse_args(["kafka", "stop", "--broker", "2"])
    assert (args.action, args.brokers, args.broker) == ("stop", 1, 2)
