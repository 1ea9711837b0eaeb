"""AssemblePrompt latency vs the retrieval Search it wraps, in one run (target: <= 1.3x at p50).

Registry, retrieval and prompt run in-process on loopback (Milvus Lite admits one process); the
index holds the project's docs/, the tokenizer is a BPE trained on them and served by the
registry, and assembly packs 8 chunks into a 512-token budget.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from bench.harness import compare, write_report
from llmops.client.prompt import variable
from llmops.core import auth
from llmops.testing.prompt_stack import PromptStack

QUESTION = "Who may move the production alias of a model?"


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="llmops-bench-prompt-"))
    os.environ["LLMOPS_HOME"] = str(tmp)
    keys = {"admin": auth.add_key(tmp / "keys.json", "bench", "admin")}
    stack = PromptStack(keys, auth.KeyStore(tmp / "keys.json"), tmp, None)
    try:
        client = stack.clients["admin"]
        client.prompt.create_template("qa")
        client.prompt.create_version("qa", [("system", "Context:\n{{ context }}"), ("user", "{{ question }}")],
                                     variables=[variable("question")], index="docs", top_k=8)

        def search():
            return client.retrieval.search("docs", QUESTION, top_k=8)

        def assemble():
            return client.prompt.assemble("qa@1", {"question": QUESTION}, context_window_tokens=512,
                                          reserve_output_tokens=128, tokenizer_model="target@production")

        assert assemble().chunks
        result = compare("search", search, "assemble_prompt", assemble, warmup=20, rounds=10, per_round=20)
        report = write_report("prompt_assemble", {"assemble_vs_search": result},
                              {"assemble_le_1.3x_search": ("assemble_vs_search", "ratio_p50", "<=", 1.3)})
        return 0 if all(t["met"] for t in report["targets"].values()) else 1
    finally:
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
