"""The console's policy page: the three event lists of each policy, editable.

A policy from the config file is shown but changed in the file (a reload would undo an
edit here); one saved here is the operators' (`source: admin`), and the config leaves it
alone. With no `default` policy, the built-in defaults apply, and saving them makes one.
"""

from __future__ import annotations

from aiohttp import web

from workers.auth.policy import DEFAULT, EventPolicy
from workers.console.context import (
    action,
    change,
    console_of,
    field_of,
    lines_of,
    page,
    render,
)
from workers.keys import admin, records

LISTS = (
    ("anonymous_events", "Anonymous events",
     "accepted without a JWT from anonymous senders; empty: every event"),
    ("modify_without_jwt", "Customer data changes without a JWT",
     "may change customer data without a JWT"),
    ("modify_with_jwt", "JWT required", "change customer data and need a valid JWT; "
                                        "empty: no event needs one"),
)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/console/policies", page(policies_page))
    router.add_post("/console/policies", action(save))


async def policies_page(request: web.Request) -> web.StreamResponse:
    state = await console_of(request).state()
    shown: dict[str, EventPolicy] = dict(state.policies)
    builtin = "default" not in shown
    if builtin:
        shown["default"] = DEFAULT
    rows = [{"name": name, "policy": policy,
             "editable": (name == "default" and builtin)
             or not records.from_config(policy.source),
             "source": "built-in" if name == "default" and builtin else policy.source or "config",
             "keys": sorted(r.id for r in state.keys.records()
                            if (r.policy or "default") == name)}
            for name, policy in sorted(shown.items())]
    return render(request, "policies.html", rows=rows, lists=LISTS)


async def save(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    policies = (await console_of(request).state()).policies
    await change(request, lambda: admin.set_policy(
        policies, field_of(form, "name"),
        anonymous_events=lines_of(form, "anonymous_events"),
        modify_without_jwt=lines_of(form, "modify_without_jwt"),
        modify_with_jwt=lines_of(form, "modify_with_jwt"), source="admin"),
        "/console/policies")
