"""`eventguard kafka start --brokers N`, `start|stop --broker N`, and the cluster's status."""

from __future__ import annotations

import asyncio
import sys

from workers import settings
from workers.devstack import secure
from workers.devstack.broker import BrokerError
from workers.devstack.broker import status as single_status
from workers.devstack.cluster import Cluster, replication


def command(local: Cluster, action: str, brokers: int, node: int | None,
            secure: bool = False) -> int:
    if action == "status":
        return status(local)
    if node is not None:
        if action == "start":
            state = local.start_node(node)
            print(f"Kafka node {node} running at {state.bootstrap} (pid {state.pid})")
        else:
            print(f"Kafka node {node} stopped" if local.stop_node(node)
                  else f"Kafka node {node} was not running")
        return 0
    if action == "stop":
        print("Kafka cluster stopped" if local.stop() else "Kafka cluster was not running")
        return 0
    single = single_status()
    if single is not None:
        # One dev Kafka at a time: `eventguard` commands name whichever runs to the processes.
        raise BrokerError(f"the single dev broker runs at {single.bootstrap}; stop it first "
                          "with `eventguard kafka stop`")
    layout = local.start(brokers, secure=secure)
    rf, min_isr = replication(layout.size)
    kind = "secure Kafka cluster" if layout.secure else "Kafka cluster"
    print(f"{kind} of {layout.size} running at {layout.bootstrap} (folder {local.home})")
    if layout.secure:
        _grant(local, layout.bootstrap)
    print(f"for its topics set kafka.replication_factor: {rf} and kafka.min_insync_replicas: "
          f"{min_isr} in the config, then run `"
          + (f"env $(cat {local.material.dir}/admin.env) " if layout.secure else "")
          + "eventguard topics apply`")
    return 0


def _grant(local: Cluster, bootstrap: str) -> None:
    """The ACLs of every role, for the config's topic prefix."""
    conf = settings.load()
    count = asyncio.run(secure.grant(bootstrap, local.material.security(secure.ADMIN),
                                     conf.topic_prefix, conf.app_id))
    where = local.material.dir
    print(f"{count} ACLs for topic prefix {conf.topic_prefix!r}: each role may touch only its "
          "own topics (docs/operations.md)")
    print(f"run each process as its role, e.g. `env $(cat {where}/ingest.env) eventguard "
          f"ingest`; roles: {', '.join(secure.ROLES)}, and admin for `topics apply`")


def status(local: Cluster) -> int:
    """The bootstrap address on stdout (so `$(eventguard kafka status)` works), the
    nodes on stderr."""
    nodes = local.status()
    if not nodes:
        print("no local Kafka cluster; start one with `eventguard kafka start --brokers 3`",
              file=sys.stderr)
        return 1
    if any(nodes.values()):
        print(local.bootstrap)
    for node_id, state in sorted(nodes.items()):
        where = local.node(node_id).log_file
        print(f"node {node_id}: " + (f"running at {state.bootstrap} (pid {state.pid}, log {where})"
                                     if state else "stopped"), file=sys.stderr)
    return 0 if any(nodes.values()) else 1
