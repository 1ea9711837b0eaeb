"""The role matrix, generated from the policy tables and checked by real calls over the wire:
every RPC of every service (from the contracts, so an RPC missing from a policy table shows up as
denied for everyone) and every HTTP endpoint, called with a key of each role and with none.

A call the policy allows may still fail (its empty request is invalid, a watch runs into the
test's short deadline): only UNAUTHENTICATED / PERMISSION_DENIED (401/403) count as refused."""

from __future__ import annotations

import importlib

import grpc
import httpx
import pytest
from google.protobuf import message_factory

from llmops.core.auth import OPEN_SERVICES, Role
from llmops.testing.services import ROLES
from services.feedback.review import HTTP_POLICY as REVIEW_POLICY
from services.pipeline.openai_api import HTTP_POLICY as OPENAI_POLICY

pytestmark = pytest.mark.slow  # the whole stack

SERVICES = ("registry", "retrieval", "prompt", "generation", "pipeline", "feedback", "finetuning")
REFUSED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


# (process, contract module, servicer module) of every gRPC service; the fine-tuning process also
# serves evaluations
CONTRACTS = [(s, f"llmops.api.{s}.v1.{s}_pb2", f"services.{s}.servicer") for s in SERVICES] + [
    ("finetuning", "llmops.api.finetuning.v1.evaluation_pb2", "services.finetuning.evaluation.servicer"),
    ("finetuning", "llmops.api.finetuning.v1.release_pb2", "services.finetuning.release.servicer")]


def _rpcs():
    for service, contract, servicer in CONTRACTS:
        pb = importlib.import_module(contract)
        policy = importlib.import_module(servicer).POLICY.rules
        for svc in pb.DESCRIPTOR.services_by_name.values():
            for m in svc.methods:
                path = f"/{svc.full_name}/{m.name}"
                yield service, path, m, policy.get(path)


RPCS = list(_rpcs())


def _call(channel: grpc.Channel, path: str, m, key: str | None) -> grpc.StatusCode:
    request_type = message_factory.GetMessageClass(m.input_type)
    response_type = message_factory.GetMessageClass(m.output_type)
    kwargs = {"request_serializer": request_type.SerializeToString, "response_deserializer": response_type.FromString}
    md = [("authorization", f"Bearer {key}")] if key else []
    try:
        if m.client_streaming and m.server_streaming:
            next(iter(channel.stream_stream(path, **kwargs)(iter([request_type()]), metadata=md, timeout=2)))
        elif m.client_streaming:
            channel.stream_unary(path, **kwargs)(iter([request_type()]), metadata=md, timeout=2)
        elif m.server_streaming:
            next(iter(channel.unary_stream(path, **kwargs)(request_type(), metadata=md, timeout=2)))
        else:
            channel.unary_unary(path, **kwargs)(request_type(), metadata=md, timeout=2)
    except grpc.RpcError as exc:
        return exc.code()
    except StopIteration:
        pass
    return grpc.StatusCode.OK


def test_every_rpc_allows_exactly_the_roles_its_policy_names(rag):
    assert len(RPCS) >= 70  # every RPC of the nine gRPC services
    failures, checked = [], 0
    for service, path, m, needed in RPCS:
        with grpc.insecure_channel(rag.procs[service].address) as channel:
            code = _call(channel, path, m, None)
            checked += 1
            if code is not grpc.StatusCode.UNAUTHENTICATED:
                failures.append(f"{path} without a key: {code.name}")
            for role in ROLES:
                code = _call(channel, path, m, rag.keys[role])
                checked += 1
                allowed = needed is not None and Role[role.upper()] >= needed
                if allowed == (code in REFUSED):
                    failures.append(f"{path} as {role}: {code.name}, expected {'allowed' if allowed else 'refused'}")
                assert code is not grpc.StatusCode.UNKNOWN, f"{path} as {role}: UNKNOWN"
    print(f"role matrix: {checked} gRPC calls ({len(RPCS)} RPCs x {len(ROLES)} roles + no key)")
    assert not failures, "\n".join(failures)


def test_health_and_reflection_are_open(rag):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    for service in SERVICES:
        with grpc.insecure_channel(rag.procs[service].address) as channel:
            resp = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
    assert all(p.startswith("/grpc.") for p in OPEN_SERVICES)


@pytest.mark.parametrize(("app", "policy"), [("pipeline", OPENAI_POLICY), ("feedback", REVIEW_POLICY)])
def test_every_http_endpoint_allows_exactly_the_roles_its_policy_names(rag, app, policy):
    base = f"http://{rag.procs[app].http_address}"
    failures = []
    with httpx.Client(base_url=base, timeout=10) as http:
        assert http.get("/healthz").status_code == 200
        for (method, pattern), needed in policy.items():
            route = pattern.replace("{model_id:path}", "ext")
            body = {} if method == "POST" else None
            status = http.request(method, route, json=body).status_code
            if status != 401:
                failures.append(f"{method} {route} without a key: {status}")
            for role in ROLES:
                status = http.request(method, route, json=body,
                                      headers={"authorization": f"Bearer {rag.keys[role]}"}).status_code
                allowed = Role[role.upper()] >= needed
                if allowed == (status in (401, 403)):
                    failures.append(f"{method} {route} as {role}: {status}, expected "
                                    f"{'allowed' if allowed else 'refused'}")
    assert not failures, "\n".join(failures)
