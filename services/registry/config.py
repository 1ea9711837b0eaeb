"""Registry settings, from `LLMOPS_REGISTRY_*` variables."""

from __future__ import annotations

from dataclasses import dataclass

from llmops.core import localenv


@dataclass(frozen=True)
class RegistryConfig:
    database_url: str = ""  # default: SQLite under $LLMOPS_HOME/data/registry
    artifact_root: str = ""  # local folder or fsspec URL; default under $LLMOPS_HOME/data/registry
    spool_dir: str = ""  # where uploads are staged and hashed; default beside a folder root, else the temp dir
    max_artifact_bytes: int = 50 * 1024**3  # per file
    protected_aliases: tuple[str, ...] = ("production",)
    event_poll_s: float = 1.0  # watchers also poll, so events written by other replicas arrive

    def resolved_database_url(self) -> str:
        return self.database_url or localenv.default_sqlite_url("registry")

    def resolved_artifact_root(self) -> str:
        return self.artifact_root or str(localenv.data_dir("registry") / "artifacts")
