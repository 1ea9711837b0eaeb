"""Fine-tuning settings, from `LLMOPS_FINETUNING_*` variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmops.core import localenv
from llmops.core.locations import Locations


@dataclass(frozen=True)
class FineTuningConfig:
    database_url: str = ""  # default: SQLite under $LLMOPS_HOME/data/finetuning
    jobs_dir: str = ""  # worker folders (data, checkpoints, output); default under $LLMOPS_HOME
    evaluations_dir: str = ""  # each evaluation's rows to answer; default under $LLMOPS_HOME
    registry_address: str = ""
    # Evaluations and releases call these services (answers, bundles, judges' rubrics, live
    # signals); defaults: the local stack's.
    generation_address: str = ""
    pipeline_address: str = ""
    prompt_address: str = ""
    feedback_address: str = ""
    # the service's own key (role editor): downloads bases, registers candidates; granted
    # RegistryService/RecordEvaluation (evidence for gates) and GenerationService/CreateRoute
    # (a model version's evaluation route)
    api_key: str = ""
    max_concurrent_jobs: int = 1
    max_run_time_s: float = 6 * 3600.0
    max_restarts: int = 3  # a worker that dies is started again (from its checkpoint) this often
    watch_poll_s: float = 1.0
    max_concurrent_evaluations: int = 2  # runs at once; each answers up to its `concurrency` rows at once
    max_concurrent_releases: int = 16  # releases watched at once (one per bundle at a time)
    release_poll_s: float = 1.0  # how often a release reads the live signals (a breach rolls back within it)
    # Where dataset_uri may point (besides registry: datasets): default the feedback service's
    # export folder and $LLMOPS_HOME/datasets.
    dataset_roots: tuple[str, ...] = ()
    dataset_allowed_prefixes: tuple[str, ...] = ()  # object-store URLs, e.g. s3://bucket/datasets/
    gpus_per_job: int = 0  # 0 or 1: one worker process; more: the DeepSpeed launcher, one rank per GPU

    def dataset_locations(self) -> Locations:
        home = localenv.home()
        roots = self.dataset_roots or (home / "data" / "feedback" / "datasets", home / "datasets")
        return Locations.of(roots, self.dataset_allowed_prefixes,
                            "LLMOPS_FINETUNING_DATASET_ROOTS / _DATASET_ALLOWED_PREFIXES")

    def resolved_database_url(self) -> str:
        return self.database_url or localenv.default_sqlite_url("finetuning")

    def resolved_jobs_dir(self) -> Path:
        path = Path(self.jobs_dir) if self.jobs_dir else localenv.data_dir("finetuning") / "jobs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolved_evaluations_dir(self) -> Path:
        path = Path(self.evaluations_dir) if self.evaluations_dir else localenv.data_dir("finetuning") / "evaluations"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def registry(self) -> str:
        return self.registry_address or localenv.service_address("registry")

    def addresses(self) -> dict[str, str]:
        """The services evaluations and releases call."""
        return {"registry": self.registry(),
                "generation": self.generation_address or localenv.service_address("generation"),
                "pipeline": self.pipeline_address or localenv.service_address("pipeline"),
                "prompt": self.prompt_address or localenv.service_address("prompt"),
                "feedback": self.feedback_address or localenv.service_address("feedback")}
