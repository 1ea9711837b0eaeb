"""Feedback settings, from `LLMOPS_FEEDBACK_*` variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmops.core import localenv
from llmops.core.locations import Locations, is_url


@dataclass(frozen=True)
class FeedbackConfig:
    database_url: str = ""  # default: SQLite under $LLMOPS_HOME/data/feedback
    export_root: str = ""  # where named Delta tables go (a folder or s3://...); default $LLMOPS_HOME/data/feedback/datasets
    export_allowed_prefixes: tuple[str, ...] = ()  # object-store URLs exports may go to, e.g. s3://bucket/exports/
    feedback_per_minute: int = 120  # per caller; 0: no limit
    watch_poll_s: float = 1.0  # WatchFeedback also polls (other replicas write too)
    http_host: str = "127.0.0.1"
    http_port: int = -1  # the review web app; -1: the default port, 0: a free one

    def resolved_http_port(self) -> int:
        return localenv.DEFAULT_PORTS["feedback_http"] if self.http_port < 0 else self.http_port

    def resolved_database_url(self) -> str:
        return self.database_url or localenv.default_sqlite_url("feedback")

    def export_locations(self) -> Locations:
        return Locations.of([self.resolved_export_root()], self.export_allowed_prefixes,
                            "LLMOPS_FEEDBACK_EXPORT_ALLOWED_PREFIXES")

    def resolved_export_root(self) -> str:
        """A local folder (created) or an object-store URL (`s3://bucket/datasets`)."""
        if is_url(self.export_root):
            return self.export_root.rstrip("/")
        root = Path(self.export_root) if self.export_root else localenv.data_dir("feedback") / "datasets"
        root.mkdir(parents=True, exist_ok=True)
        return str(root)
