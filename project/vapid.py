"""The demo's VAPID keys for Web Push: from the environment when set, else a pair made on the
first start and kept in a git-ignored file, so that browsers subscribed yesterday still work."""

from __future__ import annotations

import json
import os
from pathlib import Path

from notifications.push.keys import generate


def demo_keys(path: Path) -> tuple[str, str]:
    """(public, private), base64url."""
    public = os.environ.get("WEB_PUSH_VAPID_PUBLIC_KEY", "")
    private = os.environ.get("WEB_PUSH_VAPID_PRIVATE_KEY", "")
    if public and private:
        return public, private
    try:
        stored = json.loads(path.read_text())
        return stored["public"], stored["private"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    public, private = generate()
    try:
        path.write_text(json.dumps({"public": public, "private": private}))
        path.chmod(0o600)
    except OSError:
        pass  # a read-only checkout: a new pair at each start, which still works for a session
    return public, private
