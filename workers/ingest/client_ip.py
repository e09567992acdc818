"""Which address sent a request, believing forwarding headers only from trusted proxies.

`X-Real-IP` and `X-Forwarded-For` are whatever the client wrote unless the TCP
peer is a proxy we trust (`ingest.trusted_proxies`, CIDRs; none by default).
From a trusted peer, `X-Real-IP` wins when it is an address; else
`X-Forwarded-For` is walked from the right, skipping trusted proxies, and the
first address that is not one is the client. An entry that is not an address
stops the walk: the last trusted hop is then the best we know.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def client_ip(peer: str | None, real_ip: str | None, forwarded_for: str | None,
              trusted: tuple[Network, ...]) -> str | None:
    if not trusted:
        return peer  # the common case: no proxies configured, nothing to parse
    peer_addr = _address(peer)
    if peer_addr is None or not _trusted(peer_addr, trusted):
        return peer
    real = _address(real_ip)
    if real is not None:
        return str(real)
    best = peer_addr
    for entry in reversed((forwarded_for or "").split(",")):
        if not entry.strip():
            continue
        hop = _address(entry)
        if hop is None:
            break
        best = hop
        if not _trusted(hop, trusted):
            break
    return str(best)


def _address(text: str | None) -> Address | None:
    if not text:
        return None
    value = text.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, trusted: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)
