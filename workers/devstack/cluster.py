"""A local multi-node Kafka cluster: `eventguard kafka start --brokers 3`.

Each node is a combined broker+controller KRaft JVM from the same cached jars
as the single dev broker (`broker.Broker`), with its own folder, data, log and
state file under the cluster's home. The controller quorum is static (every
node is a voter), so every node's ports are fixed when the cluster is made and
kept in `cluster.json`, with the cluster id all nodes are formatted with.

Losing one node of three keeps a quorum and, with replication factor 3 and
min.insync.replicas=2, keeps every partition writable with acks=all.
"""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from workers.devstack import broker
from workers.devstack.broker import Broker, BrokerError, BrokerState
from workers.devstack.secure import Material

# Three JVMs share the machine with the workers and the ingest.
NODE_HEAP = ("-Xms128m", "-Xmx384m")
# The single broker's listener settings that a secure node replaces with its own.
SECURED = frozenset({"listeners", "advertised.listeners", "listener.security.protocol.map",
                     "inter.broker.listener.name"})


@dataclass(frozen=True)
class NodeSpec:
    node_id: int
    port: int
    controller_port: int


@dataclass(frozen=True)
class Layout:
    cluster_id: str
    nodes: tuple[NodeSpec, ...]
    secure: bool = False  # SASL/SCRAM over TLS and ACLs (workers/devstack/secure.py)

    @property
    def size(self) -> int:
        return len(self.nodes)

    @property
    def voters(self) -> str:
        return ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)


def replication(size: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for a cluster of `size` nodes: 3 copies,
    2 of them acknowledged, so one node may be lost without refusing a write."""
    rf = min(3, size)
    return rf, min(2, rf)


class Node(Broker):
    """One node of a cluster: fixed ports, the cluster's id, every node a voter."""

    heap = NODE_HEAP

    def __init__(self, home_dir: Path, layout: Layout, spec: NodeSpec,
                 material: Material | None = None) -> None:
        super().__init__(home_dir)
        self.layout = layout
        self.spec = spec
        self.material = material  # a secure cluster's

    def _ports(self) -> tuple[int, int]:
        # The quorum's voters are named by port in every node's properties.
        return self.spec.port, self.spec.controller_port

    def _cluster_id(self) -> str:
        return self.layout.cluster_id

    def _properties(self, port: int, cport: int, data: Path) -> list[str]:
        rf, min_isr = replication(self.layout.size)
        replaced = {
            "node.id": str(self.spec.node_id),
            "controller.quorum.voters": self.layout.voters,
            "offsets.topic.replication.factor": str(rf),
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": str(min_isr),
        }
        lines = [
            f"{key}={replaced[key]}" if key in replaced else line
            for line in super()._properties(port, cport, data)
            for key in [line.split("=", 1)[0]]
        ]
        if self.material is not None:
            lines = [line for line in lines if line.split("=", 1)[0] not in SECURED]
            lines += self.material.broker_properties(port, cport)
        # Topics made without eventguard's settings (Faust's own) get the same guarantees.
        return [*lines, f"default.replication.factor={rf}", f"min.insync.replicas={min_isr}"]

    def _format_arguments(self) -> list[str]:
        return self.material.scram_arguments() if self.material is not None else []


class Cluster:
    """The nodes under `home` (default: `<broker home>/cluster`)."""

    def __init__(self, home_dir: Path | None = None) -> None:
        self.home = Path(home_dir) if home_dir is not None else broker.home() / "cluster"

    @property
    def _layout_file(self) -> Path:
        return self.home / "cluster.json"

    def layout(self) -> Layout | None:
        """The cluster made here, or None."""
        try:
            raw = json.loads(self._layout_file.read_text())
            nodes = tuple(NodeSpec(int(n["node_id"]), int(n["port"]), int(n["controller_port"]))
                          for n in raw["nodes"])
            return Layout(str(raw["cluster_id"]), nodes, bool(raw.get("secure", False)))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @property
    def material(self) -> Material:
        """A secure cluster's CA, certificate and passwords."""
        return Material(self.home)

    def _make(self, size: int, secure: bool = False) -> Layout:
        # Ports are picked one after another while all are still closed; a clash with a
        # port another process takes before the nodes bind shows as a start-up error.
        ports: list[int] = []
        while len(ports) < 2 * size:
            port = broker._free_port()
            if port not in ports:
                ports.append(port)
        layout = Layout(broker.new_cluster_id(), tuple(
            NodeSpec(i + 1, ports[2 * i], ports[2 * i + 1]) for i in range(size)), secure)
        self.home.mkdir(parents=True, exist_ok=True)
        self._layout_file.write_text(json.dumps({
            "cluster_id": layout.cluster_id,
            "nodes": [n.__dict__ for n in layout.nodes],
            "secure": secure,
        }))
        return layout

    def nodes(self) -> list[Node]:
        layout = self.layout()
        if layout is None:
            return []
        material = self.material if layout.secure else None
        return [Node(self.home / f"node-{n.node_id}", layout, n, material)
                for n in layout.nodes]

    def node(self, node_id: int) -> Node:
        for node in self.nodes():
            if node.spec.node_id == node_id:
                return node
        layout = self.layout()
        raise BrokerError(f"no node {node_id}: " + (
            f"the cluster in {self.home} has nodes 1-{layout.size}" if layout
            else f"no cluster in {self.home}; start one with `eventguard kafka start --brokers 3`"))

    def status(self) -> dict[int, BrokerState | None]:
        """Every node of the cluster: its state when it runs, else None."""
        return {n.spec.node_id: n.status() for n in self.nodes()}

    def running(self) -> bool:
        return any(state is not None for state in self.status().values())

    @property
    def bootstrap(self) -> str:
        layout = self.layout()
        if layout is None:
            raise BrokerError(f"no cluster in {self.home}")
        return layout.bootstrap

    def quorum_leader(self, timeout_s: float = 120.0) -> int | None:
        """The node id of the active controller, from Kafka's own quorum tool (a JVM
        start: seconds). None when the quorum has no leader or the tool fails."""
        done = subprocess.run(
            [broker._java(), "-Xmx128m", "-cp", f"{broker.provision()}/*",
             "org.apache.kafka.tools.MetadataQuorumCommand",
             "--bootstrap-server", self.bootstrap, "describe", "--status"],
            capture_output=True, text=True, timeout=timeout_s, check=False)
        found = re.search(r"^LeaderId:\s+(\d+)", done.stdout, re.MULTILINE)
        return int(found.group(1)) if found and done.returncode == 0 else None

    def start(self, size: int, timeout_s: float = 180.0, secure: bool = False) -> Layout:
        """Start every node that is not running (making the cluster if there is none);
        return once all serve requests."""
        layout = self.layout()
        if layout is not None and (layout.size, layout.secure) != (size, secure):
            flags = f"--brokers {layout.size}" + (" --secure" if layout.secure else "")
            raise BrokerError(
                f"the cluster in {self.home} has {layout.size} nodes"
                f"{', secure' if layout.secure else ''}: start it with {flags}, or remove "
                "the folder for a new one")
        if layout is None:
            layout = self._make(size, secure)
        if layout.secure:
            self.material.make()
        launches = [n.launch() for n in self.nodes() if n.status() is None]
        with ThreadPoolExecutor(len(launches) or 1) as pool:
            list(pool.map(lambda launch: launch.ready(timeout_s), launches))
        return layout

    def start_node(self, node_id: int, timeout_s: float = 180.0) -> BrokerState:
        return self.node(node_id).start(timeout_s)

    def stop_node(self, node_id: int, timeout_s: float = 30.0, kill: bool = False) -> bool:
        return self.node(node_id).stop(timeout_s, kill)

    def stop(self, timeout_s: float = 30.0, kill: bool = False) -> bool:
        """Stop every node, all at once: a node shutting down cleanly asks the quorum
        to let it go, and the last ones would wait for a quorum that is gone.
        Returns False when none was running. The data stays."""
        nodes = self.nodes()
        with ThreadPoolExecutor(len(nodes) or 1) as pool:
            stopped = list(pool.map(lambda n: n.stop(timeout_s, kill), nodes))
        return any(stopped)
