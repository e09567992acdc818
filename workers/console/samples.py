"""Copyable code samples for a key's new secrets, shown once beside them. Pure.

Each sample is what a user of that kind of key writes first: the Jitsu JS SDK for a
browser key, curl for a server secret, the project's client and openssl for a signed
request, curl with a Bearer token for a key bound to a JWT provider.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

EVENT = '{"event_type":"page","page_title":"Pricing"}'


@dataclass(frozen=True)
class Sample:
    title: str
    language: str
    code: str


def for_key(ingest_url: str, shown: Mapping[str, str], origins: Sequence[str],
            jwt_providers: Sequence[str]) -> list[Sample]:
    url = ingest_url.rstrip("/")
    out = []
    client = shown.get("client_secret")
    if client:
        origin = _origin_for(origins)
        out.append(Sample("Browser: the Jitsu JS SDK", "javascript", "\n".join([
            "import { jitsuClient } from '@jitsu/sdk-js';",
            "",
            f"const jitsu = jitsuClient({{ key: {_js(client)}, tracking_host: {_js(url)} }});",
            "jitsu.track('page');",
        ])))
        out.append(Sample("Browser key with curl (as a page would send it)", "shell", "\n".join([
            f"curl -s {shlex.quote(url + '/api/v1/event')} \\",
            f"  -H {shlex.quote('X-Auth-Token: ' + client)} \\",
            f"  -H {shlex.quote('Origin: ' + origin)} \\",
            "  -H 'Content-Type: application/json' \\",
            f"  -d {shlex.quote(EVENT)}",
        ])))
    server = shown.get("server_secret")
    if server:
        out.append(Sample("Backend: curl with the server secret", "shell", "\n".join([
            f"curl -s {shlex.quote(url + '/api/v1/s2s/event')} \\",
            f"  -H {shlex.quote('X-Auth-Token: ' + server)} \\",
            "  -H 'Content-Type: application/json' \\",
            f"  -d {shlex.quote(EVENT)}",
        ])))
    access_key, access_secret = shown.get("access_key"), shown.get("access_secret")
    if access_key and access_secret:
        out.append(Sample("Signed request: Python (eventguard's client)", "python", "\n".join([
            "import json, urllib.request",
            "from workers.client import signed_headers",
            "",
            f"body = {EVENT!r}.encode()",
            f"headers = signed_headers({access_key!r}, {access_secret!r}, body,",
            "                         '/api/v1/s2s/event')",
            f"request = urllib.request.Request({url + '/api/v1/s2s/event'!r}, data=body,",
            "    headers={**headers, 'Content-Type': 'application/json'})",
            "print(urllib.request.urlopen(request).read().decode())",
        ])))
        out.append(Sample("Signed request: shell (openssl)", "shell", signed_shell(
            url, access_key, access_secret)))
    if jwt_providers and (client or server):
        path, secret = (("/api/v1/event", client) if client else ("/api/v1/s2s/event", server))
        assert secret is not None
        lines = [f"JWT=...  # a token from {', '.join(jwt_providers)}",
                 f"curl -s {shlex.quote(url + path)} \\",
                 f"  -H {shlex.quote('X-Auth-Token: ' + secret)} \\",
                 '  -H "Authorization: Bearer $JWT" \\']
        if path == "/api/v1/event":
            lines.append(f"  -H {shlex.quote('Origin: ' + _origin_for(origins))} \\")
        lines += ["  -H 'Content-Type: application/json' \\",
                  "  -d '{\"event_type\":\"form.submit\"}'"]
        out.append(Sample("With a JWT (events that need one)", "shell", "\n".join(lines)))
    return out


def signed_shell(url: str, access_key: str, access_secret: str) -> str:
    """The signature of DESIGN.md: HMAC-SHA256 over timestamp, nonce, method, path and the
    body's SHA-256, as lowercase hex."""
    return "\n".join([
        f"ACCESS_KEY={shlex.quote(access_key)}",
        f"ACCESS_SECRET={shlex.quote(access_secret)}",
        f"BODY={shlex.quote(EVENT)}",
        "TS=$(date +%s%3N)",
        "NONCE=$(openssl rand -hex 16)",
        "BODY_SHA=$(printf '%s' \"$BODY\" | openssl dgst -sha256 -r | cut -d' ' -f1)",
        "SIG=$(printf '%s\\n%s\\n%s\\n%s\\n%s' \"$TS\" \"$NONCE\" POST /api/v1/s2s/event "
        "\"$BODY_SHA\" \\",
        "  | openssl dgst -sha256 -hmac \"$ACCESS_SECRET\" -r | cut -d' ' -f1)",
        f"curl -s {shlex.quote(url + '/api/v1/s2s/event')} \\",
        "  -H \"X-Access-Key: $ACCESS_KEY\" -H \"X-Timestamp: $TS\" \\",
        "  -H \"X-Nonce: $NONCE\" -H \"X-Signature: $SIG\" \\",
        "  -H 'Content-Type: application/json' -d \"$BODY\"",
    ])


def _origin_for(origins: Sequence[str]) -> str:
    """An Origin the key allows, for the sample: its first pattern made concrete."""
    for pattern in origins:
        host = pattern.split("://", 1)[-1].rstrip("/").replace("*.", "www.").replace("*", "")
        if host:
            scheme = pattern.split("://", 1)[0] if "://" in pattern else "https"
            return f"{scheme}://{host}"
    return "https://www.example.com"


def _js(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
