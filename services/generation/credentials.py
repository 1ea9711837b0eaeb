"""Provider credentials by reference: `env:NAME` (a variable of the generation service's
environment) or `secret:name` (a file in the secrets folder, e.g. a mounted Kubernetes secret).
Only references are stored and returned; the values are read when a call needs them, and the
`Redactor` scrubs every value it has handed out from any text that leaves the service."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from llmops.core.errors import BadGateway, InvalidArgument

REF = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]{0,127}|secret:[a-z0-9][a-z0-9._-]{0,62})$")


def check_ref(ref: str) -> str:
    if ref and not REF.match(ref):
        # not echoed: a malformed reference is often the secret itself
        raise InvalidArgument("credential_ref is not a reference: use `env:VARIABLE` or `secret:name`; "
                              "never put the credential itself in a route")
    return ref


class Credentials:
    def __init__(self, secrets_dir: Path, env_prefixes: tuple[str, ...] = ("LLMOPS_PROVIDER_",)):
        self._dir = secrets_dir
        self._env_prefixes = env_prefixes
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def resolve(self, ref: str) -> str:
        """The credential's value ('' for no reference); FAILED_PRECONDITION when it is not set."""
        if not ref:
            return ""
        kind, _, name = ref.partition(":")
        if kind == "env":
            # checked again here: a route stored before the prefixes were narrowed reads nothing else
            value = os.environ.get(name, "") if name.startswith(self._env_prefixes) else ""
        else:
            try:
                value = (self._dir / name).read_text().strip()
            except OSError:
                value = ""
        if not value:
            raise BadGateway(f"credential {ref} is not set on the generation service; an admin must "
                             f"provide it ({'the environment variable' if kind == 'env' else 'the secret file'})",
                             reason="UPSTREAM_CREDENTIAL_MISSING")
        with self._lock:
            self._seen.add(value)
        return value

    def redact(self, text: str) -> str:
        """`text` with every credential value this process has used replaced."""
        for value in self._seen:
            if value and value in text:
                text = text.replace(value, "[redacted]")
        return text
