"""What a key source must publish so auth-config matches it: pure diffing.

A source owns the records it published (their `source` field) and never
touches keys made with the CLI or the admin API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from workers.auth.keys import KeyRecord
from workers.auth.policy import EventPolicy
from workers.auth.providers import Provider
from workers.keys import records

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    upserts: tuple[KeyRecord, ...] = ()
    removals: tuple[str, ...] = ()  # key ids to tombstone
    policy_upserts: tuple[tuple[str, EventPolicy], ...] = ()
    policy_removals: tuple[str, ...] = ()
    provider_upserts: tuple[Provider, ...] = ()
    provider_removals: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.upserts or self.removals or self.policy_upserts or self.policy_removals
                    or self.provider_upserts or self.provider_removals)

    def records(self) -> list[records.Pair]:
        """The auth-config records that carry out this plan, keys first."""
        return [
            *records.key_changes(self.upserts, self.removals),
            *(records.encode_policy(n, p) for n, p in self.policy_upserts),
            *(((records.POLICY_PREFIX + n).encode(), None) for n in self.policy_removals),
            *(records.encode_provider(p) for p in self.provider_upserts),
            *(((records.PROVIDER_PREFIX + i).encode(), None) for i in self.provider_removals),
        ]


def plan(
    source: str,
    desired: Iterable[KeyRecord],
    current: Iterable[KeyRecord],
    desired_policies: Mapping[str, EventPolicy],
    current_policies: Mapping[str, EventPolicy],
    now: float,
    same_sealed: Callable[[str, str], bool] = lambda a, b: a == b,
    desired_providers: Mapping[str, Provider] | None = None,
    current_providers: Mapping[str, Provider] | None = None,
) -> Plan:
    """`same_sealed` tells whether two sealed access secrets hold the same secret:
    sealing is randomized, so equal secrets differ as text."""
    existing = {r.id: r for r in current}
    wanted = {r.id: r for r in desired}
    upserts = []
    for key_id, record in wanted.items():
        old = existing.get(key_id)
        if old is not None and old.source != source:
            log.warning("key %s is owned by %s; source %s leaves it alone", key_id, old.source,
                        source)
            continue
        record = replace(record, source=source,
                         created_at=old.created_at if old and old.created_at else round(now, 3))
        if (old is not None and old.access_secret and record.access_secret
                and same_sealed(old.access_secret, record.access_secret)):
            record = replace(record, access_secret=old.access_secret)
        if record != old:
            upserts.append(record)
    removals = [k for k, r in existing.items() if r.source == source and k not in wanted]
    # Policies and providers another publisher made (the console, kcat) are theirs: the
    # config neither changes nor removes them, as for keys.
    pol_up = [(n, p) for n, p in desired_policies.items()
              if not _operators(current_policies.get(n)) and current_policies.get(n) != p]
    pol_rm = [n for n, p in current_policies.items()
              if n not in desired_policies and not _operators(p)]
    want_p, have_p = desired_providers or {}, current_providers or {}
    prov_up = [p for i, p in want_p.items() if i not in have_p or (
        not _operators(have_p[i]) and have_p[i].record != p.record)]
    prov_rm = [i for i, p in have_p.items() if i not in want_p and not _operators(p)]
    return Plan(tuple(upserts), tuple(sorted(removals)), tuple(pol_up), tuple(sorted(pol_rm)),
                tuple(prov_up), tuple(sorted(prov_rm)))


def _operators(item: EventPolicy | Provider | None) -> bool:
    return item is not None and not records.from_config(item.source)


def mass_removal(todo: Plan, source: str, current: Iterable[KeyRecord]) -> str | None:
    """Why `todo` looks like a mistake (a typo that empties a source), or None.

    Removing every key of a source, or more than half of them, in one reload is what a
    misspelt `api_keys:` or a truncated file does; the caller keeps the keys unless the
    operator confirmed (`server.api_keys_remove_many`)."""
    owned = sum(1 for r in current if r.source == source)
    removed = len(todo.removals)
    if removed == 0 or (removed < owned and removed * 2 <= owned):
        return None
    return (f"key source {source}: this reload would remove {removed} of its {owned} keys; "
            "keeping them (a typo or a cut file?). If it is meant, set "
            "server.api_keys_remove_many: true for one reload, or revoke them with "
            "`eventguard keys revoke`")
