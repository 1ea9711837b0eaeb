"""An LLM as judge: any generation route scores an answer against its question and reference by
a rubric that is a versioned prompt template (so a rubric change is a new version, reviewed and
approved like any prompt, and every score names the rubric version that produced it).

The rubric is rendered by the prompt service with the variables `question`, `reference` and
`answer`. A route whose targets are all providers is asked for a JSON object of SCHEMA
(`response_format` json_schema); a registry model (which has no constrained decoding) answers in
text, read as "Score: N" and "Reason: ..." (a JSON object in the text is read too). An answer the
judge did not score is kept with score None and the judge's words as its reason, never dropped."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from llmops.api.prompt.v1 import prompt_pb2 as ppb

SCALE = (1, 5)
SCHEMA = {"type": "object", "additionalProperties": False, "required": ["score", "reason"],
          "properties": {"score": {"type": "integer", "minimum": SCALE[0], "maximum": SCALE[1]},
                         "reason": {"type": "string"}}}
_SCORE = re.compile(r"score\W{0,3}(\d+(?:\.\d+)?)", re.IGNORECASE)
_REASON = re.compile(r"reason\W{0,3}(.+)", re.IGNORECASE | re.DOTALL)
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True)
class Verdict:
    score: float | None  # on SCALE; None when the judge's answer held no score in range
    reason: str
    rubric: str  # the prompt template version that produced it


def parse(text: str) -> tuple[float | None, str]:
    """(score, reason) from a judge's answer, JSON or "Score: N / Reason: ..." text."""
    found = _OBJECT.search(text)
    if found:
        try:
            data = json.loads(found.group(0))
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("score"), int | float):
            score = float(data["score"])
            return (score if SCALE[0] <= score <= SCALE[1] else None), str(data.get("reason", ""))
    match = _SCORE.search(text)
    score = float(match.group(1)) if match else None
    reason = _REASON.search(text)
    if score is not None and not SCALE[0] <= score <= SCALE[1]:
        score = None
    return score, (reason.group(1).strip() if reason else text.strip())


_ROLES = {ppb.ROLE_SYSTEM: "system", ppb.ROLE_USER: "user", ppb.ROLE_ASSISTANT: "assistant"}


class Judge:
    def __init__(self, client, route: str, rubric: str, *, max_tokens: int = 128):
        """`client`: an llmops Client with prompt and generation; `rubric`: a prompt template
        reference (`name@alias` or `name@version`)."""
        self._client = client
        self.route = route
        self.rubric = rubric
        self._max_tokens = max_tokens
        targets = client.generation.get_route(route).targets
        self.structured = bool(targets) and all(not t.registry_model for t in targets)

    def __call__(self, question: str, reference: str, answer: str) -> Verdict:
        prompt = self._client.prompt.assemble(self.rubric, {"question": question, "reference": reference,
                                                            "answer": answer})
        messages = [(_ROLES.get(m.role, "user"), m.content) for m in prompt.messages]
        structured = ({"type": "json_schema", "json_schema": {"name": "verdict", "strict": True, "schema": SCHEMA}}
                      if self.structured else None)
        reply = self._client.generation.generate(self.route, messages, max_tokens=self._max_tokens,
                                                 temperature=0.0, response_format=structured)
        score, reason = parse(reply.text)
        return Verdict(score, reason[:1000], prompt.template_version)

