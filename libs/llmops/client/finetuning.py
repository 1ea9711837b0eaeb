"""Client of `llmops.finetuning.v1`: tuning jobs and their events."""

from __future__ import annotations

from collections.abc import Iterator

from llmops.api.finetuning.v1 import finetuning_pb2 as pb
from llmops.api.finetuning.v1 import finetuning_pb2_grpc
from llmops.client.base import ServiceClient, operation, reopening, struct

METHODS = {"lora": pb.METHOD_LORA, "full": pb.METHOD_FULL}


class FineTuningClient(ServiceClient):
    service = "finetuning"

    def __init__(self, channel):
        super().__init__(channel)
        self.stub = finetuning_pb2_grpc.FineTuningServiceStub(channel)

    @operation("create")
    def create(self, base_model: str, dataset_uri: str, *, dataset_version: str = "", method: str = "lora",
               output_model: str = "", zero_stage: int = 0, offload_optimizer: bool = False,
               merge_lora: bool = True, idempotency_key: str = "", deepspeed_extra: dict | None = None,
               **hyperparameters) -> pb.TuningJob:
        """`hyperparameters`: epochs, learning_rate, batch_size, max_seq_length, lora_rank,
        lora_alpha, checkpoint_interval_steps. `merge_lora=False` registers the adapter alone.
        `deepspeed_extra` is merged into DeepSpeed's configuration (e.g. {"gradient_clipping": 0.5})."""
        job = pb.TuningJob(base_model=base_model, dataset_uri=dataset_uri, dataset_version=dataset_version,
                           method=METHODS.get(method, 0), output_model=output_model,
                           hyperparameters=pb.Hyperparameters(merge_lora=merge_lora, **hyperparameters),
                           deepspeed=pb.DeepSpeedConfig(zero_stage=zero_stage, offload_optimizer=offload_optimizer,
                                                        extra=struct(deepspeed_extra)))
        return self._unary(self.stub.CreateTuningJob, pb.CreateTuningJobRequest(job=job,
                                                                               idempotency_key=idempotency_key),
                           timeout=300)

    @operation("get")
    def get(self, name: str) -> pb.TuningJob:
        return self._unary(self.stub.GetTuningJob, pb.GetTuningJobRequest(name=name))

    @operation("list")
    def list(self, page_size: int = 100) -> list[pb.TuningJob]:
        return self._paged(self.stub.ListTuningJobs, lambda t: pb.ListTuningJobsRequest(page_size=page_size,
                                                                                        page_token=t), "jobs")

    @operation("cancel")
    def cancel(self, name: str) -> pb.TuningJob:
        return self._unary(self.stub.CancelTuningJob, pb.CancelTuningJobRequest(name=name))

    def watch(self, name: str, *, timeout: float | None = None) -> Iterator[pb.TuningJobEvent]:
        """The job's events from the first, then new ones as they happen, until it ends."""
        return replayed_events(lambda t: self.stub.WatchTuningJob(pb.WatchTuningJobRequest(name=name), timeout=t),
                               timeout)


def replayed_events(open_stream, timeout: float | None) -> Iterator[pb.TuningJobEvent]:
    """A run's events through streams the server ends at their maximum age: a reopened one
    replays from the first, so events already seen are skipped."""
    seen = 0
    for msg in reopening(open_stream, timeout):
        if msg.event.sequence > seen:
            seen = msg.event.sequence
            yield msg.event
