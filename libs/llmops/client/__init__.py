"""The Python client: typed wrappers over each service, configured like the CLI.

    from llmops.client import Client
    with Client.local() as client:           # addresses and key written by `llmops up`
        client.registry.get_version("support-bot@production")
"""

from llmops.client.base import CallError
from llmops.client.client import Client

__all__ = ["CallError", "Client"]
