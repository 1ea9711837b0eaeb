"""Datasets and exact match as tuning jobs and `llmops models compare` read them."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from llmops.core.errors import InvalidArgument, NotFound
from llmops.evaluation import compare, datasets, exact

CHAT = [{"role": "system", "content": "Context: approvals"}, {"role": "user", "content": "Who approves?"},
        {"role": "assistant", "content": "A person."}]


def test_exact_match_ignores_case_punctuation_and_spacing_but_not_words():
    assert exact.exact_match("  Only an APPROVER,  may move it!", "only an approver may move it")
    assert not exact.exact_match("An approver only.", "Only an approver.")
    assert not exact.exact_match("", "A person.")
    assert exact.rate(["a.", "b", "x"], ["A", "B", "c"]) == pytest.approx(2 / 3)
    assert exact.rate([], []) == 0.0


def test_answer_match_takes_the_reference_or_a_key_phrase_from_the_start_of_a_word():
    assert exact.answer_match("It is stored in Milvus.", "Milvus", ["milvus"])
    assert exact.answer_match("Sent in the x-trace-id trailer", "", ["x-trace-id"])  # punctuation normalised
    assert exact.answer_match("Requests are idempotent", "", ["idempoten"])  # a prefix of a word counts
    assert not exact.answer_match("a disapprover", "", ["approver"])  # the middle of a word does not
    assert exact.answer_match("Only an approver.", "only an approver")  # no phrases: exact match
    assert not exact.answer_match("An approver, only", "Only an approver.")


def test_evaluation_rows_carry_key_phrases_and_sources(tmp_path):
    path = tmp_path / "eval.jsonl"
    path.write_text(json.dumps({"question": "Where?", "reference_answer": "Milvus", "key_phrases": ["milvus"],
                                "sources": ["retrieval.md"]}) + "\n"
                    + json.dumps({"question": "Who?", "reference_answer": "Me."}) + "\n")
    ds = datasets.from_jsonl(path)
    assert ds.expectation(0) == datasets.Expectation(("milvus",), ("retrieval.md",))
    assert ds.expectation(1) == datasets.Expectation()
    path.write_text(json.dumps({"question": "Where?", "reference_answer": "x", "key_phrases": "milvus"}) + "\n")
    with pytest.raises(InvalidArgument, match="row 0: key_phrases must be a list of non-empty strings"):
        datasets.from_jsonl(path)
    with pytest.raises(NotFound):
        datasets.from_jsonl(tmp_path / "missing.jsonl")


def test_the_committed_docs_evaluation_set_names_documents_that_exist():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    ds = datasets.from_jsonl(root / "datasets" / "docs-qa.jsonl")
    assert len(ds.evaluation) >= 20
    for i, (_, reference) in enumerate(ds.evaluation):
        expect = ds.expectation(i)
        assert expect.key_phrases and expect.sources
        texts = [(root / "docs" / s).read_text() for s in expect.sources]
        # the answer is really in the docs: a key phrase appears in one of its sources
        assert any(exact.answer_match(t, reference, expect.key_phrases) for t in texts), reference


def test_dataset_references_split_at_the_last_at_sign():
    assert datasets.parse_ref("/tables/fixes@3") == ("/tables/fixes", "3")
    assert datasets.parse_ref("registry:my-set@production") == ("registry:my-set", "production")
    assert datasets.parse_ref("/tables/fixes") == ("/tables/fixes", "")
    assert datasets.parse_ref("/odd@dir/table") == ("/odd@dir/table", "")


def test_delta_chat_and_evaluation_tables_give_questions_with_references(tmp_path):
    write_deltalake(str(tmp_path / "chat"), pa.Table.from_pylist([{"messages": CHAT, "reference": "corrected"}]))
    ds = datasets.load(str(tmp_path / "chat"), "0")
    assert ds.version == "0" and ds.chat == [CHAT] and ds.evaluation == [(CHAT[:-1], "A person.")]
    write_deltalake(str(tmp_path / "eval"), pa.Table.from_pylist([{"question": "Who?", "reference_answer": "Me."}]))
    ev = datasets.load(str(tmp_path / "eval"))
    assert ev.chat == [] and ev.evaluation == [([{"role": "user", "content": "Who?"}], "Me.")]
    with pytest.raises(InvalidArgument, match="evaluation set"):
        datasets.require_chat(ev)
    with pytest.raises(NotFound, match="no Delta table"):
        datasets.load(str(tmp_path / "missing"))
    with pytest.raises(InvalidArgument, match="table version number"):
        datasets.load(str(tmp_path / "chat"), "latest")


def test_jsonl_rows_are_checked_line_by_line(tmp_path):
    def fetch_lines(*lines):
        def fetch(name, version, dest):
            dest.mkdir(parents=True, exist_ok=True)
            (dest / datasets.JSONL_FILE).write_text("\n".join(lines) + "\n")
            return version or "7"
        return fetch

    ds = datasets.load("registry:set", "", fetch_lines(json.dumps({"messages": CHAT})), tmp_path / "a")
    assert (ds.version, ds.chat) == ("7", [CHAT])
    with pytest.raises(InvalidArgument, match="line 2 is not JSON"):
        datasets.load("registry:set", "1", fetch_lines(json.dumps({"messages": CHAT}), "{oops"), tmp_path / "b")
    with pytest.raises(InvalidArgument, match="row 0: messages must be"):
        datasets.load("registry:set", "1", fetch_lines(json.dumps({"messages": CHAT[:-1]})), tmp_path / "c")
    with pytest.raises(InvalidArgument, match="lacks required column"):
        datasets.load("registry:set", "1", fetch_lines(json.dumps({"prompt": "x"})), tmp_path / "d")
    with pytest.raises(InvalidArgument, match="empty"):
        datasets.load("registry:set", "1", fetch_lines(""), tmp_path / "e")


def test_the_comparison_table_puts_the_sides_and_the_difference_in_columns():
    cand = compare.SideResult("m@2", "eval-m-2", "registry:models/m/versions/2", ["a", "b"], [3, 5], [10.0, 30.0],
                              [True, False])
    champ = compare.SideResult("m@production", "eval-m-production", "registry:models/m/versions/1", ["x", "y"],
                               [8, 8], [12.0, 14.0], [False, False])
    text = compare.table(cand, champ)
    assert "exact match                  50%" in text and "+50 pts" in text
    assert "mean answer length (tokens)  4.0" in text and "-4.0" in text
    assert "served by: registry:models/m/versions/2 vs registry:models/m/versions/1; 2 questions" in text
    assert "answer match" not in text  # rows without key phrases are scored by exact match alone
    cand.answer_matches, champ.answer_matches = [True, True], [True, False]
    cand.scored_by_phrases = champ.scored_by_phrases = True
    assert "answer match (key phrase)    100%" in compare.table(cand, champ)


def test_token_f1_and_contains_reference_give_partial_and_lenient_credit():
    assert exact.token_f1("Only an approver may", "only an approver") == pytest.approx(2 * 0.75 * 1.0 / 1.75)
    assert exact.token_f1("The approver, only.", "only the approver") == 1.0  # a bag of normalised words
    assert exact.token_f1("nothing alike", "only the approver") == 0.0
    assert exact.token_f1("", "") == 1.0 and exact.token_f1("", "x") == 0.0
    assert exact.contains_reference("It is: Only an approver!", "only an approver")
    assert not exact.contains_reference("only an approvers", "only an approver")  # word boundaries
    assert not exact.contains_reference("anything", "")


def test_paired_statistics_say_how_sure_a_difference_is():
    from llmops.evaluation import stats

    m = stats.mcnemar([True] * 10 + [False] * 2 + [True] * 8, [False] * 10 + [True] * 2 + [True] * 8)
    assert (m.candidate_only, m.champion_only) == (10, 2)
    assert m.p_value == pytest.approx(2 * (1 + 12 + 66) / 4096)  # exact binomial on the 12 discordant rows
    assert stats.mcnemar([True, False], [True, False]).p_value == 1.0  # no discordant rows: no evidence

    better = stats.paired_bootstrap([1.0] * 18 + [0.0] * 2, [0.0] * 16 + [1.0] * 4)
    assert better.mean == pytest.approx(0.7) and better.excludes_zero and better.low <= 0.7 <= better.high
    same = stats.paired_bootstrap([1.0, 0.0, 1.0], [1.0, 0.0, 1.0])
    assert (same.low, same.high) == (0.0, 0.0) and not same.excludes_zero
    noisy = stats.paired_bootstrap([1.0, 0.0] * 10, [0.0, 1.0] * 10)
    assert noisy.low < 0 < noisy.high and not noisy.excludes_zero
    assert stats.paired_bootstrap([1.0, 0.0] * 10, [0.0, 1.0] * 10) == noisy  # seeded: the same interval
    with pytest.raises(ValueError, match="differ in length"):
        stats.paired_bootstrap([1.0], [1.0, 0.0])


def test_the_comparison_prints_intervals_and_mcnemar_under_the_table():
    cand = compare.SideResult("m@2", "r2", "", ["a"] * 20, [1] * 20, [1.0] * 20, [True] * 18 + [False] * 2)
    champ = compare.SideResult("m@1", "r1", "", ["b"] * 20, [1] * 20, [1.0] * 20, [False] * 16 + [True] * 4)
    cand.f1, champ.f1 = [1.0] * 20, [0.5] * 20
    text = compare.table(cand, champ)
    assert "token F1                     100%           50%" in text
    assert "exact match: +70 pts, 95% CI +" in text and "(the candidate is better); McNemar p = 0.00131" in text
    assert "token F1: +50 pts, 95% CI +50 to +50 (the candidate is better)" in text
    champ.matches = list(cand.matches)
    assert "exact match: +0 pts, 95% CI +0 to +0 (not significant); McNemar p = 1" in compare.table(cand, champ)


def test_retrieval_scores_rank_the_cited_documents_against_the_rows_sources():
    from llmops.evaluation import rag

    assert rag.retrieval_scores(["a.md", "a.md", "b.md", "c.md"], ["b.md", "z.md"]) == (True, 0.5, 0.5)
    assert rag.retrieval_scores(["a.md"], ["a.md"]) == (True, 1.0, 1.0)
    assert rag.retrieval_scores(["a.md"], ["b.md"]) == (False, 0.0, 0.0)
    assert rag.retrieval_scores(["a.md"], []) is None  # a row that names no source is not scored


def test_citation_support_checks_the_cited_chunks_hold_the_answer():
    from llmops.evaluation import rag

    chunks = [("[1]", "Only a person with the approver role may move the production alias."),
              ("[2]", "Routes limit requests per minute for each caller.")]
    assert rag.citation_support("Only the approver role may move production aliases [1].", chunks) is True
    assert rag.citation_support("Only the approver role may move production aliases [2].", chunks) is False
    assert rag.citation_support("Only the approver role may move it.", chunks) is None  # nothing cited by marker
    assert rag.citation_support("[3]", chunks) is None  # a marker that names no chunk


def test_a_judges_answer_is_read_as_json_or_text_and_out_of_scale_is_no_score():
    from llmops.evaluation import judge

    assert judge.parse('{"score": 4, "reason": "right but long"}') == (4.0, "right but long")
    assert judge.parse('Here you go: {"score": 2, "reason": "misses the approver"} done') == (2.0, "misses the approver")
    assert judge.parse("Score: 5\nReason: matches the reference.") == (5.0, "matches the reference.")
    assert judge.parse("score = 9, way off the scale") == (None, "score = 9, way off the scale")
    assert judge.parse("I cannot decide.") == (None, "I cannot decide.")


def test_the_comparison_adds_the_judges_scores_when_a_judge_was_asked():
    from llmops.evaluation.judge import Verdict

    cand = compare.SideResult("m@2", "r2", "", ["a"] * 4, [1] * 4, [1.0] * 4, [True] * 4)
    champ = compare.SideResult("m@1", "r1", "", ["b"] * 4, [1] * 4, [1.0] * 4, [True] * 4)
    assert "judge" not in compare.table(cand, champ)  # no judge asked: no judge rows
    cand.verdicts = [Verdict(s, "", "prompts/rubric/versions/2") for s in (5, 4, 5, None)]
    champ.verdicts = [Verdict(s, "", "prompts/rubric/versions/2") for s in (3, 2, 3, 4)]
    text = compare.table(cand, champ)
    assert "judge score (1-5)            4.67           3.00          +1.67" in text
    assert ("judge score: +2.00, 95% CI +2.00 to +2.00 (the candidate is better; 3 questions scored on both "
            "sides, rubric prompts/rubric/versions/2)") in text


def test_run_metrics_count_failed_rows_as_wrong_and_compare_pairs_by_row():
    from llmops.evaluation import scoring

    def row(i, side, answer, ref, error="", latency=10.0, **extra):
        r = scoring.Row(i, side, f"q{i}", ref, answer, scoring.answer_scores(answer, ref), latency, 3)
        r.scores.update(extra)
        return scoring.failed(r, error) if error else r

    target = [row(0, "target", "An approver.", "an approver", hit=1.0, reciprocal_rank=1.0),
              row(1, "target", "", "tokens", error="UNAVAILABLE: down"),
              row(2, "target", "the trace id", "The trace id", latency=30.0, hit=0.0, reciprocal_rank=0.0)]
    baseline = [row(0, "baseline", "nobody", "an approver", hit=1.0, reciprocal_rank=0.5),
                row(1, "baseline", "tokens", "tokens"),
                row(2, "baseline", "a trace", "The trace id", hit=1.0, reciprocal_rank=1.0)]
    m = scoring.aggregate(target)
    assert m["exact_match"] == pytest.approx(2 / 3) and m["error_rate"] == pytest.approx(1 / 3)
    assert m["hit_rate"] == 0.5 and m["mrr"] == 0.5  # over the rows that name sources
    assert m["latency_p50_ms"] == 10.0 and m["latency_p95_ms"] == 30.0  # answered rows only
    by_metric = {c.metric: c for c in scoring.compare(target, baseline)}
    em = by_metric["exact_match"]
    assert (em.value, em.baseline_value, em.difference.rows) == (pytest.approx(2 / 3), pytest.approx(1 / 3), 3)
    assert em.p_value is not None and by_metric["token_f1"].p_value is None
    assert by_metric["error_rate"].difference.mean == pytest.approx(1 / 3)
    assert scoring.verdict("error_rate", 0.1, 0.5) == "the target is worse"
    assert scoring.verdict("exact_match", 0.1, 0.5) == "the target is better"
    assert scoring.verdict("exact_match", -0.1, 0.5) == "not significant"
