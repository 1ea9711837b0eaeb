"""How a release judges a step: each version's signals from the feedback summary, nothing judged
before both sides have enough requests, and each margin breached on its own."""

from __future__ import annotations

from llmops.api.feedback.v1 import feedback_pb2 as fpb
from services.finetuning.release.signals import Margins, Signals, breach, enough, of_version

CANDIDATE, STABLE = "models/qa/versions/2", "models/qa/versions/1"


def test_a_versions_signals_add_up_over_the_model_versions_it_used():
    rows = [fpb.FeedbackSummary(pipeline_version=CANDIDATE, model_version="m@1", requests=10, errors=2,
                                thumbs_down=1, latency_p95_ms=120),
            fpb.FeedbackSummary(pipeline_version=CANDIDATE, model_version="m@2", requests=10, errors=0,
                                thumbs_down=3, latency_p95_ms=80),
            fpb.FeedbackSummary(pipeline_version=STABLE, model_version="m@1", requests=40)]
    s = of_version(rows, CANDIDATE)
    assert (s.requests, s.errors, s.thumbs_down, s.latency_p95_ms) == (20, 2, 4, 120)
    assert s.error_rate == 0.1 and s.thumbs_down_rate == 4 / 18  # thumbs down per answered request
    assert of_version(rows, "models/qa/versions/9") == Signals()


def test_no_judgement_before_enough_requests_then_each_margin_on_its_own():
    m = Margins(max_error_rate_increase=0.05, max_thumbs_down_rate_increase=0.1, max_latency_p95_ratio=1.5,
                min_requests=20)
    stable = Signals(requests=100, errors=1, thumbs_down=5, latency_p95_ms=100)
    assert breach(m, Signals(requests=19, errors=19), stable) is None and not enough(m, Signals(requests=19), stable)
    assert breach(m, Signals(requests=20, errors=1, thumbs_down=1, latency_p95_ms=140), stable) is None
    assert breach(m, Signals(requests=20, errors=2), stable).startswith("error rate 10.0% vs 1.0%")
    assert breach(m, Signals(requests=20, thumbs_down=4), stable).startswith("thumbs-down rate 20.0% vs 5.1%")
    assert breach(m, Signals(requests=20, latency_p95_ms=151), stable).startswith("latency p95 151 ms vs 100 ms")
    unchecked = Margins(-1, -1, -1, 20)  # negative margins are not checked
    assert breach(unchecked, Signals(requests=20, errors=20, latency_p95_ms=10_000), stable) is None


def test_a_judge_score_drop_breaches_once_both_sides_have_enough_judged_answers():
    m = Margins(min_requests=20, max_judge_score_drop=0.5, min_judged=5)
    stable = Signals(requests=100, judged=10, judge_sum=40.0)  # mean 4.0
    assert breach(m, Signals(requests=3, judged=4, judge_sum=4.0), stable) is None  # too few judged
    why = breach(m, Signals(requests=3, judged=5, judge_sum=15.0), stable)  # mean 3.0, before enough requests
    assert why.startswith("judge score 3.00 vs 4.00 (allowed -0.5) over 5 vs 10 judged answers")
    assert breach(m, Signals(requests=30, judged=5, judge_sum=18.0), stable) is None  # 3.6: within the margin
    assert not enough(m, Signals(requests=30, judged=4), stable, judging=True)
    assert enough(m, Signals(requests=30, judged=5), stable, judging=True)
    assert of_version([], CANDIDATE, {CANDIDATE: (2, 7.0)}).judge_score == 3.5
