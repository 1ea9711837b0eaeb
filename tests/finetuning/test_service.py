"""The fine-tuning service as its own process, against a registry holding the demo model and a
Delta table in the chat format `ExportDataset` writes: bad input, a LoRA job whose worker is
killed and whose service is restarted mid-run (it resumes and registers a candidate with
lineage), and cancellation."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import time

import grpc
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from llmops.api.finetuning.v1 import finetuning_pb2 as pb
from llmops.client import CallError, Client
from llmops.core import auth
from llmops.core.errors import DomainError
from llmops.evaluation import datasets
from llmops.testing.services import ServerThread, ServiceProcess, code_of, make_keys
from services.feedback.export import CHAT_SCHEMA
from services.registry.config import RegistryConfig
from services.registry.server import build as build_registry

pytestmark = pytest.mark.slow  # trains models

ROWS = [[{"role": "user", "content": f"What is {i} plus {i}?"}, {"role": "assistant", "content": f"It is {2 * i}."}]
        for i in range(40)]
FAST = {"epochs": 2, "batch_size": 4, "checkpoint_interval_steps": 4, "learning_rate": 5e-3, "max_seq_length": 64}


def delta(path, rows, schema=CHAT_SCHEMA):
    write_deltalake(str(path), pa.Table.from_pylist(rows, schema=schema), mode="overwrite")
    return str(path)


class TuneStack:
    def __init__(self, home, demo_model):
        self.home = home
        self.keys = make_keys(home / "keys.json")
        service_key = auth.add_key(home / "keys.json", "service-finetuning", "editor")
        self.registry = ServerThread(functools.partial(build_registry, config=RegistryConfig(
            database_url=f"sqlite:///{home / 'reg.db'}", artifact_root=str(home / "art"))),
            auth.KeyStore(home / "keys.json")).start()
        admin = Client({"registry": self.registry.address}, self.keys["admin"])
        admin.registry.create_model("demo")
        v = admin.registry.upload_folder("demo", demo_model)
        admin.registry.approve(v.name)
        admin.registry.set_alias("demo", "production", v.version)
        self.base = v.name
        admin.close()
        self.dataset = delta(home / "train", [{"request_id": f"r{i}", "messages": m, "reference": "corrected",
                                               "context_ids": [], "pipeline_version": "", "model_version": ""}
                                              for i, m in enumerate(ROWS)])
        env = {"LLMOPS_HOME": str(home), "LLMOPS_REGISTRY_ADDRESS": self.registry.address,
               "LLMOPS_FINETUNING_API_KEY": service_key,
               "LLMOPS_FINETUNING_DATASET_ROOTS": str(home.parent)}  # the tests' own temporary folders
        self.proc = ServiceProcess("finetuning", env, home)
        self.start()

    def start(self):
        self.proc.start(timeout=60)
        self.clients = {r: Client({"finetuning": self.proc.address, "registry": self.registry.address}, k)
                        for r, k in self.keys.items()}

    def restart(self):
        for c in self.clients.values():
            c.close()
        self.proc.kill()
        self.proc.port = int(self.proc.address.rsplit(":", 1)[1])  # the same address after the restart
        self.start()

    def close(self):
        for c in self.clients.values():
            c.close()
        if self.proc.proc.poll() is None:
            self.proc.terminate()
        self.registry.stop()


@pytest.fixture(scope="module")
def tune(tmp_path_factory, demo_model):
    stack = TuneStack(tmp_path_factory.mktemp("tune"), demo_model)
    yield stack
    stack.close()


def wait(tune, name: str, cond, timeout: float = 300) -> pb.TuningJob:
    deadline = time.monotonic() + timeout
    while not cond(job := tune.clients["reader"].finetuning.get(name)):
        assert time.monotonic() < deadline, f"{name} is {pb.JobState.Name(job.state)}: {job.error}"
        time.sleep(0.2)
    return job


def worker_pid(job_dir: str) -> int | None:
    out = subprocess.run(["pgrep", "-f", f"services.finetuning.worker {job_dir}"], capture_output=True, text=True)
    return int(out.stdout.split()[0]) if out.stdout.strip() else None


def test_bad_input_is_refused_with_the_reason(tune, tmp_path):
    ft = tune.clients["editor"].finetuning
    code, msg = code_of(ft.create, "nope@production", tune.dataset, **FAST)
    assert code is grpc.StatusCode.NOT_FOUND and "nope" in msg
    code, msg = code_of(ft.create, "demo@production", str(tmp_path / "missing"), **FAST)
    assert code is grpc.StatusCode.NOT_FOUND and "no Delta table" in msg
    evaluation = delta(tmp_path / "eval", [{"question": "q", "reference_answer": "a"}],
                       pa.schema([("question", pa.string()), ("reference_answer", pa.string())]))
    code, msg = code_of(ft.create, "demo@production", evaluation, **FAST)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "lacks required column(s): messages" in msg
    empty = delta(tmp_path / "empty", [])
    code, msg = code_of(ft.create, "demo@production", empty, **FAST)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "empty" in msg
    code, msg = code_of(ft.create, "demo@production", tune.dataset, **{**FAST, "learning_rate": 5.0})
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "learning_rate" in msg
    code, msg = code_of(ft.create, "demo@production", tune.dataset, method="", **FAST)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "method" in msg
    code, _ = code_of(tune.clients["reader"].finetuning.create, "demo@production", tune.dataset, **FAST)
    assert code is grpc.StatusCode.PERMISSION_DENIED
    code, _ = code_of(ft.get, "tuningJobs/doesnotexist")
    assert code is grpc.StatusCode.NOT_FOUND
    code, msg = code_of(ft.create, "demo@production", tune.dataset, deepspeed_extra={"train_batch_size": 64}, **FAST)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "train_batch_size" in msg
    for extra in ({"flops_profiler": {"enabled": True, "output_file": "/tmp/x"}}, {"wandb": {"enabled": True}},
                  {"tensorboard": {"enabled": True, "output_path": "/tmp"}}):
        code, msg = code_of(ft.create, "demo@production", tune.dataset, deepspeed_extra=extra, **FAST)
        assert code is grpc.StatusCode.INVALID_ARGUMENT and next(iter(extra)) in msg and "gradient_clipping" in msg
    for outside in ("/etc", "../../etc", "s3://another-bucket/data", "/no/such/folder"):
        code, msg = code_of(ft.create, "demo@production", outside, **FAST)
        assert code is grpc.StatusCode.INVALID_ARGUMENT and "dataset_uri" in msg and "exist" not in msg
    code, msg = code_of(ft.create, "demo@production", tune.dataset + "\x00", **FAST)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "control character" in msg
    code, msg = code_of(ft.create, "demo@production", "registry:no-such-set", **FAST)
    assert code is grpc.StatusCode.NOT_FOUND and "no-such-set" in msg
    code, msg = code_of(ft.create, "demo@production", "registry:demo", dataset_version="1", **FAST)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "holds no data.jsonl" in msg


def test_a_jsonl_dataset_in_the_registry_trains_and_is_evaluated(tune, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "q"}]}\n')
    with pytest.raises(DomainError, match="ending with the assistant's answer"):
        datasets.upload(tune.clients["editor"].registry, "jsonl-train", bad)
    good = tmp_path / "train.jsonl"
    good.write_text("".join(json.dumps({"messages": r}) + "\n" for r in ROWS[:12]))
    v = datasets.upload(tune.clients["editor"].registry, "jsonl-train", good)
    assert v.artifact.format == datasets.JSONL_FORMAT
    ft = tune.clients["editor"].finetuning
    job = ft.create("demo@production", "registry:jsonl-train", output_model="demo-jsonl",
                    deepspeed_extra={"gradient_clipping": 0.5}, **FAST)
    assert (job.dataset_uri, job.dataset_version) == ("registry:jsonl-train", "1")
    assert dict(job.deepspeed.extra) == {"gradient_clipping": 0.5}
    spec = json.loads((tune.home / "data" / "finetuning" / "jobs" / job.name.split("/")[1] / "spec.json").read_text())
    assert spec["deepspeed_extra"] == {"gradient_clipping": 0.5}
    done = wait(tune, job.name, lambda j: j.state in (pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED))
    assert done.state == pb.JOB_STATE_SUCCEEDED, done.error
    assert done.metrics["exact_match_questions"] == 12 and 0 <= done.metrics["exact_match"] <= 1
    lineage = tune.clients["admin"].registry.get_version(done.result_model_version).lineage
    assert (lineage.dataset_uri, lineage.dataset_version) == ("registry:jsonl-train", "1")
    events = list(tune.clients["reader"].finetuning.watch(job.name, timeout=30))
    assert [pb.JobState.Name(e.state) for e in events[:2]] == ["JOB_STATE_VALIDATING", "JOB_STATE_QUEUED"]
    assert "registry:jsonl-train@1 (12 rows)" in events[0].message
    assert any(e.message.startswith("evaluated:") and "exact_match" in e.message for e in events)


def test_a_killed_worker_and_a_restarted_service_resume_and_register_a_candidate(tune):
    ft = tune.clients["editor"].finetuning
    job = ft.create("demo@production", tune.dataset, output_model="demo-tuned", idempotency_key="first", **FAST)
    assert ft.create("demo@production", tune.dataset, output_model="demo-tuned", idempotency_key="first",
                     **FAST).name == job.name
    job_dir = str(tune.home / "data" / "finetuning" / "jobs" / job.name.split("/")[1])
    wait(tune, job.name, lambda j: j.steps_done >= 6)
    os.kill(worker_pid(job_dir), signal.SIGKILL)  # the worker dies mid-run...
    tune.restart()  # ...and so does the service
    done = wait(tune, job.name, lambda j: j.state in (pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED))
    assert done.state == pb.JOB_STATE_SUCCEEDED, done.error
    assert (done.steps_done, done.total_steps) == (18, 18) and done.metrics["eval_loss"] > 0
    events = list(tune.clients["reader"].finetuning.watch(job.name, timeout=30))
    steps = [e.step for e in events if e.message.startswith("progress:")]
    assert steps == list(range(1, 19)), steps  # no step repeated or skipped
    assert any(e.message.startswith("resumed:") for e in events)
    v = tune.clients["admin"].registry.get_version(done.result_model_version)
    assert v.name.startswith("models/demo-tuned/versions/")
    assert v.status == 1  # VERSION_STATUS_PENDING_APPROVAL: a person validates it before it serves
    assert (v.lineage.base_version, v.lineage.dataset_uri, v.lineage.dataset_version, v.lineage.tuning_job_id) == (
        tune.base, tune.dataset, "0", job.name)
    assert v.metrics["eval_loss"] == pytest.approx(done.metrics["eval_loss"])
    code, msg = code_of(tune.clients["editor"].finetuning.cancel, job.name)
    assert code is grpc.StatusCode.FAILED_PRECONDITION and "already ended" in msg


def test_cancel_during_a_run(tune):
    ft = tune.clients["editor"].finetuning
    job = ft.create("demo@production", tune.dataset, output_model="demo-cancelled", **{**FAST, "epochs": 20})
    wait(tune, job.name, lambda j: j.steps_done >= 2)
    assert ft.cancel(job.name).state == pb.JOB_STATE_CANCELLING
    done = wait(tune, job.name, lambda j: j.state == pb.JOB_STATE_CANCELLED, timeout=60)
    assert done.steps_done < done.total_steps and not done.result_model_version
    code, _ = code_of(tune.clients["admin"].registry.get_model, "demo-cancelled")
    assert code is grpc.StatusCode.NOT_FOUND  # no version registered


def test_a_cancel_racing_the_end_of_a_job_ends_in_one_consistent_state(tune):
    """Cancels sent as the worker finishes and while the result uploads: each job ends either
    CANCELLED with nothing registered or SUCCEEDED with its version, and never stays CANCELLING."""
    ft = tune.clients["editor"].finetuning
    registry = tune.clients["admin"].registry
    outcomes = []
    for i, at_step in enumerate((None, "last")):
        model = f"demo-race-{i}"
        job = ft.create("demo@production", tune.dataset, output_model=model, **FAST)
        if at_step == "last":
            wait(tune, job.name, lambda j: j.total_steps and j.steps_done >= j.total_steps, timeout=120)
        else:
            wait(tune, job.name, lambda j: j.state == pb.JOB_STATE_RUNNING, timeout=60)
        try:
            ft.cancel(job.name)
        except CallError as exc:  # it ended first: fine, as long as it ended consistently
            assert exc.code is grpc.StatusCode.FAILED_PRECONDITION
        done = wait(tune, job.name, lambda j: j.state in (pb.JOB_STATE_CANCELLED, pb.JOB_STATE_SUCCEEDED,
                                                          pb.JOB_STATE_FAILED), timeout=180)
        versions = [] if code_of_missing(registry, model) else registry.list_versions(model)
        if done.state == pb.JOB_STATE_SUCCEEDED:
            assert [v.name for v in versions] == [done.result_model_version]
        else:
            assert done.state == pb.JOB_STATE_CANCELLED and not done.result_model_version and not versions
        outcomes.append(pb.JobState.Name(done.state))
    print("cancel races:", outcomes)


def code_of_missing(registry, model: str) -> bool:
    try:
        registry.get_model(model)
        return False
    except CallError as exc:
        assert exc.code is grpc.StatusCode.NOT_FOUND
        return True
