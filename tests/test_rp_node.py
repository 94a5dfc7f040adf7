"""openid-client (Node.js, pinned in tests/rp/package.json + package-lock.json) as the relying party.

``tests/rp/rp.mjs`` does discovery, code + PKCE (confidential and public clients), userinfo,
introspection, refresh and its replay rule, revocation, hybrid ``code id_token``, implicit
``id_token`` and client credentials (an application and an AK/SK pair) against the live
server. The front channel is played here: the script prints each authorization URL, this
module logs in on the hosted page and consents (``tests.live.front_channel``) and writes
back the URL the browser ended on. One node run per session; one test per check.

Needs node and ``npm ci`` in tests/rp (``.ci/run`` does both).
"""

import json
import os
import secrets
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from .live import front_channel, live_provider, live_user  # noqa: F401

RP_DIR = Path(__file__).resolve().parent / "rp"
NODE = shutil.which("node")
RUN_TIMEOUT = 180

WEB_REDIRECT = "https://rp.example.com/node-cb"
NATIVE_REDIRECT = "http://127.0.0.1:9/node-native-cb"
SPA_REDIRECT = "https://spa.example.com/node-cb"

CHECKS = [
    "discovery",
    "code_pkce_confidential",
    "userinfo",
    "introspection",
    "refresh",
    "refresh_replay_revokes_family",
    "revocation",
    "code_pkce_public",
    "hybrid_code_id_token",
    "implicit_id_token",
    "client_credentials",
]


def _skip_reason():
    if NODE is None:
        return "node is not installed: apt-get install -y nodejs npm, then npm ci in tests/rp"
    if not (RP_DIR / "node_modules" / "openid-client").is_dir():
        return "tests/rp/node_modules is missing: run npm ci in tests/rp"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def _drive(process, session, user, deadline):
    """Answer the script's authorization steps; collect its check results."""
    results, buffer, transcript = {}, b"", []
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("rp.mjs did not finish in time:\n" + "\n".join(transcript))
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if not ready:
            if process.poll() is not None:
                break
            continue
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            break
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            transcript.append(line.decode(errors="replace"))
            message = json.loads(line)
            if "authorize" in message:
                try:
                    final = front_channel(session, message["authorize"], user, message["redirect_uri"])
                except AssertionError as e:  # tell the script, which reports its check as failed
                    final = f"{message['redirect_uri']}#error=driver_failed&error_description={str(e)[:200]}"
                if isinstance(final, tuple):
                    final = final[0]
                process.stdin.write((final + "\n").encode())
                process.stdin.flush()
            elif "check" in message:
                results[message["check"]] = message
            elif message.get("done"):
                return results, transcript
    return results, transcript


@pytest.fixture(scope="module")
def node_results(live_provider, live_user):
    web = live_provider.create_app(
        "openid-client web", "web", grants=["authorization_code", "hybrid", "client_credentials", "refresh_token"],
        redirect_uris=[WEB_REDIRECT],
    )
    native = live_provider.create_app("openid-client native", "native", redirect_uris=[NATIVE_REDIRECT])
    spa = live_provider.create_app("openid-client spa", "spa", grants=["authorization_code", "implicit"], redirect_uris=[SPA_REDIRECT])
    service = live_provider.manage_json("accesskey", "create", "--account", f"node-{secrets.token_hex(3)}", "--scope", "read")
    config = {
        "issuer": live_provider.issuer,
        "web": {"client_id": web["client_id"], "client_secret": web["client_secret"], "redirect_uri": WEB_REDIRECT},
        "native": {"client_id": native["client_id"], "redirect_uri": NATIVE_REDIRECT},
        "spa": {"client_id": spa["client_id"], "redirect_uri": SPA_REDIRECT},
        "service": {"access_key": service["access_key"], "secret_key": service["secret_key"], "scope": "read"},
    }
    process = subprocess.Popen(
        [NODE, "rp.mjs", json.dumps(config)], cwd=RP_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        with requests.Session() as browser:
            results, transcript = _drive(process, browser, live_user, time.monotonic() + RUN_TIMEOUT)
        process.stdin.close()
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    process.stdout.close()
    return {"results": results, "transcript": transcript, "stderr": stderr, "returncode": process.returncode}


@pytest.mark.parametrize("check", CHECKS)
def test_openid_client(node_results, check):
    result = node_results["results"].get(check)
    assert result is not None, (
        f"rp.mjs reported nothing for {check} (exit {node_results['returncode']}):\n"
        + "\n".join(node_results["transcript"][-20:]) + "\n" + node_results["stderr"][-3000:]
    )
    assert result["ok"], f"openid-client {check}: {result.get('error')}"
