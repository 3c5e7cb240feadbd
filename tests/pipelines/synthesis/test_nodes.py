"""Synthesis nodes against a real OpenAI-compatible server on loopback."""

from __future__ import annotations

import pandas as pd
import pytest

from judgeforge.config.data_generation import DatasetColumns, GenerationConfig, SamplingConfig
from judgeforge.config.diversity import DiversityConfig
from judgeforge.llm.errors import DeliveryShortfall
from judgeforge.pipelines.synthesis.nodes import (
    SynthesisError,
    assemble_train_and_test,
    build_generation_report,
    generate_synthetic_examples,
    plan_class_quotas,
    rejected_answers,
    require_delivery,
)
from judgeforge.pipelines.synthesis.plan import (
    build_generation_plan,
    largest_remainder,
    stable_seed,
)
from tests.pipelines.synthesis.conftest import (
    generation_config,
    requested_class,
    unique_examples_responder,
)
from tests.support.openai_server import Reply


def test_largest_remainder_sums_exactly() -> None:
    assert largest_remainder({"a": 1, "b": 1, "c": 1}, 10) == {"a": 4, "b": 3, "c": 3}
    assert sum(largest_remainder({"a": 0.137, "b": 0.5, "c": 0.363}, 2001).values()) == 2001


def test_quotas_inferred_from_the_holdout(metric, columns, holdout) -> None:
    skewed = pd.concat([holdout, holdout[holdout.label == "1"]], ignore_index=True)  # 6 × "1", 3 × "0"
    quotas = plan_class_quotas(skewed, metric, generation_config(total_examples=9), columns)
    assert quotas == {"1": 6, "0": 3}


def test_quotas_from_label_distribution_accept_names_and_labels(metric, columns, holdout) -> None:
    by_name = plan_class_quotas(holdout, metric, generation_config(total_examples=10, label_distribution={"complaint": 0.7, "not_complaint": 0.3}), columns)
    by_label = plan_class_quotas(holdout, metric, generation_config(total_examples=10, label_distribution={"1": 0.7, "0": 0.3}), columns)
    assert by_name == by_label == {"1": 7, "0": 3}


def test_quotas_need_class_labels(metric, columns, holdout) -> None:
    metric = metric.model_copy(update={"class_labels": None})
    with pytest.raises(SynthesisError, match="class_labels is empty"):
        plan_class_quotas(holdout, metric, generation_config(), columns)


def run_generation(client, quotas, metric, llm, columns, sampling, enhancement, holdout, diversity=None, **overrides):
    generation, diversity = generation_config(**overrides), diversity or DiversityConfig()
    plan = build_generation_plan(quotas, enhancement, metric, llm, generation, diversity, columns, sampling)
    return generate_synthetic_examples(plan, quotas, enhancement, holdout, metric, llm, generation, diversity, columns, sampling, client)


def test_exact_class_quotas_are_delivered(openai_server, client_factory, metric, llm, columns, sampling, enhancement, holdout) -> None:
    openai_server.respond_with(unique_examples_responder())
    synthetic, rejects, stats, _ = run_generation(client_factory(openai_server), {"1": 4, "0": 2}, metric, llm, columns, sampling, enhancement, holdout)
    assert synthetic["label"].value_counts().to_dict() == {"1": 4, "0": 2}
    assert rejects.empty
    assert stats["missing_per_class"] == {"1": 0, "0": 0}
    assert synthetic["row_id"].tolist() == [f"syn-{i:06d}" for i in range(6)]
    assert all(text.startswith("A complaint") for text in synthetic[synthetic.label == "1"]["text"])


def test_every_reject_reason_is_recorded_and_quotas_still_met(openai_server, client_factory, metric, llm, columns, sampling, enhancement, holdout) -> None:
    bad_answers = {
        "invalid_output": Reply.text("I cannot help with that."),
        "empty_field": Reply.json({"examples": [{"text": "   "}]}),
        "too_short": Reply.json({"examples": [{"text": "ok"}]}),
        "too_long": Reply.json({"examples": [{"text": "word " * 400}]}),
        "truncated": Reply.text('{"examples": [{"text": "The parcel was late and"}]}', finish_reason="length"),
        "wrong_label": Reply.json({"examples": [{"text": "A message with a label", "label": "0"}]}),
        "holdout_leak": Reply.json({"examples": [{"text": "the box  was CRUSHED"}]}),
        "copies_seed_example": Reply.json({"examples": [{"text": "My parcel never came"}]}),
        "request_failed": Reply.error(400, "bad request"),
    }
    good = unique_examples_responder()
    script = iter(bad_answers.values())
    duplicate = Reply.json({"examples": [{"text": "Exactly this complaint"}]})
    sent_duplicate = []

    def respond(request):
        if requested_class(request) != "complaint":
            return good(request)
        answer = next(script, None)
        if answer is not None:
            return answer
        if len(sent_duplicate) < 2:
            sent_duplicate.append(1)
            return duplicate
        return good(request)

    openai_server.respond_with(respond)
    synthetic, rejects, stats, _ = run_generation(
        client_factory(openai_server), {"1": 3, "0": 1}, metric, llm, columns, sampling, enhancement, holdout,
        max_attempts_per_example=10, async_config={"max_concurrent_requests": 1, "max_retries": 0},
    )
    assert synthetic["label"].value_counts().to_dict() == {"1": 3, "0": 1}
    # a follow-up round asks for more than is missing: valid examples past the quota are surplus
    assert set(rejected_answers(rejects)["reason"]) == {*bad_answers, "duplicate"}
    assert "Exactly this complaint" in synthetic["text"].tolist()
    leak = rejects[rejects.reason == "holdout_leak"].iloc[0]
    assert leak["detail"] == "same text as a holdout (test) row"
    report = build_generation_report({"1": 3, "0": 1}, synthetic, rejects, stats, DatasetColumns(features=["text"], label="label"))
    assert report["rejected_by_reason"]["holdout_leak"] == 1
    assert report["rejected_total"] == len(bad_answers) + 1


def test_attempt_budget_stops_and_reports_what_is_missing(openai_server, client_factory, metric, llm, columns, sampling, enhancement, holdout) -> None:
    openai_server.respond_with(lambda request: Reply.text("no JSON here"))
    synthetic, _, stats, _ = run_generation(
        client_factory(openai_server), {"1": 2, "0": 1}, metric, llm, columns, sampling, enhancement, holdout, max_attempts_per_example=2
    )
    assert synthetic.empty
    assert stats["missing_per_class"] == {"1": 2, "0": 1}
    assert stats["calls_per_class"] == {"1": 4, "0": 2}
    assert len(openai_server.requests) == 6


def test_same_seed_same_requests_and_rows_and_rerun_is_served_from_cache(openai_server, client_factory, metric, llm, columns, sampling, enhancement, holdout) -> None:
    openai_server.respond_with(unique_examples_responder())
    client = client_factory(openai_server)
    first, *_ = run_generation(client, {"1": 3, "0": 3}, metric, llm, columns, sampling, enhancement, holdout)
    sent = len(openai_server.requests)
    second, *_ = run_generation(client, {"1": 3, "0": 3}, metric, llm, columns, sampling, enhancement, holdout)
    pd.testing.assert_frame_equal(first, second)
    assert len(openai_server.requests) == sent
    assert openai_server.answered_twice() == []


def test_changing_the_seed_changes_the_requests(openai_server, client_factory, metric, llm, columns, sampling, enhancement, holdout) -> None:
    openai_server.respond_with(unique_examples_responder())
    client = client_factory(openai_server)
    run_generation(client, {"1": 2, "0": 2}, metric, llm, columns, sampling, enhancement, holdout)
    run_generation(client, {"1": 2, "0": 2}, metric, llm, columns, sampling.model_copy(update={"seed": 8}), enhancement, holdout)
    assert len(openai_server.requests) == 8
    assert stable_seed(7, "1/r0/c0") != stable_seed(8, "1/r0/c0")


def test_prompts_carry_rubric_examples_and_instructions_and_ask_for_json(openai_server, client_factory, metric, llm, columns, sampling, enhancement, holdout) -> None:
    openai_server.respond_with(unique_examples_responder())
    run_generation(
        client_factory(openai_server), {"1": 1, "0": 0}, metric, llm, columns, sampling, enhancement, holdout,
        special_instructions="Write in British English.", debug_save_prompts=True,
    )
    body = openai_server.requests[0].body
    prompt = body["messages"][-1]["content"]
    assert "Metric: customer_complaint" in prompt
    assert "- complaint: reports a problem to fix" in prompt
    assert "Write in British English." in prompt
    assert prompt.count("Example of class") == 2
    assert body["response_format"]["type"] == "json_schema"


def test_debug_records_only_when_asked(openai_server, client_factory, metric, llm, columns, sampling, enhancement, holdout) -> None:
    openai_server.respond_with(unique_examples_responder())
    client = client_factory(openai_server)
    *_, quiet = run_generation(client, {"1": 1, "0": 0}, metric, llm, columns, sampling, enhancement, holdout)
    *_, debug = run_generation(client, {"1": 1, "0": 0}, metric, llm, columns, sampling, enhancement, holdout, debug_save_prompts=True)
    assert quiet == []
    assert debug[0]["outcome"] == ["accepted"] and debug[0]["messages"][0]["role"] == "system"


def test_assembled_dataset_has_synthetic_and_seed_rows_in_train_and_holdout_in_test(columns, sampling, output, enhancement, holdout) -> None:
    synthetic = pd.DataFrame({"row_id": ["syn-000000"], "text": ["new one"], "label": ["1"], "call_id": ["1/r0/c0"]})
    train, splits = assemble_train_and_test(synthetic, enhancement, holdout, columns, sampling, output)
    assert list(splits) == ["train", "test"]
    assert splits["train"].num_rows == 1 + len(enhancement)
    assert splits["test"]["row_id"] == holdout["row_id"].tolist()
    assert set(train["source"]) == {"synthetic", "seed"}
    assert train.loc[train.source == "seed", "row_id"].str.startswith("seed-").all()
    only_synthetic, _ = assemble_train_and_test(synthetic, enhancement, holdout, columns, sampling.model_copy(update={"include_enhancement_in_train": False}), output)
    assert len(only_synthetic) == 1


def test_generation_settings_are_validated_before_use() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        GenerationConfig(examples_per_call=0)


def test_local_model_gets_a_few_shot_conversation_of_the_target_class(metric, columns, enhancement, holdout) -> None:
    from judgeforge.config.data_generation import LLMConfig
    from judgeforge.pipelines.synthesis.generation import ExampleGenerator
    from judgeforge.pipelines.synthesis.prompts import example_shape

    class LocalStub:
        provider = "local"

        def count_tokens(self, texts):
            return [len(text.split()) for text in texts]

    local, generation, diversity = LLMConfig(provider="local"), generation_config(context_examples=2), DiversityConfig()
    plan = build_generation_plan({"1": 1, "0": 0}, enhancement, metric, local, generation, diversity, DatasetColumns(features=["text"]), SamplingConfig(seed=7))
    generator = ExampleGenerator(LocalStub(), metric, local, generation, diversity, example_shape("single", ["text"]), enhancement, holdout, "label", 7)
    row = plan.iloc[0].to_dict()
    call = generator._call(row, row["plan_call_id"], row["seed"], 1)
    roles = [m.role for m in call.request.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    shown = {m.content for m in call.request.messages if m.role == "assistant"}
    assert shown == {"My parcel never came", "Refund is late again"}  # the complaint rows only
    assert call.request.json_schema is None


def test_answers_that_repeat_the_rubric_are_rejected(openai_server, client_factory, metric, llm, columns, sampling, enhancement, holdout) -> None:
    rubric = "the customer reports a problem with an order and wants the store to fix it"
    metric = metric.model_copy(update={"class_labels": [metric.class_labels[0].model_copy(update={"rubric": rubric}), metric.class_labels[1]]})
    answers = iter([Reply.json({"examples": [{"text": f"Sure: {rubric}."}]})])
    good = unique_examples_responder()
    openai_server.respond_with(lambda request: next(answers, None) or good(request))
    synthetic, rejects, _, _ = run_generation(
        client_factory(openai_server), {"1": 1, "0": 0}, metric, llm, columns, sampling, enhancement, holdout, async_config={"max_concurrent_requests": 1}
    )
    assert rejected_answers(rejects)["reason"].tolist() == ["echoes_prompt"]
    assert len(synthetic) == 1


def test_a_shortfall_beyond_the_tolerance_stops_the_run_naming_the_cause(openai_server, client_factory, metric, llm, columns, sampling, enhancement, holdout) -> None:
    served = unique_examples_responder()
    openai_server.respond_with(lambda request: Reply.error(400, "prompt too long") if requested_class(request) == "not_complaint" else served(request))
    quotas = {"1": 8, "0": 2}
    synthetic, rejects, stats, _ = run_generation(client_factory(openai_server), quotas, metric, llm, columns, sampling, enhancement, holdout, max_shortfall_fraction=0.2)
    report = build_generation_report(quotas, synthetic, rejects, stats, columns)
    assert report["shortfall"] == {"short_by": 2, "max_shortfall_fraction": 0.2, "allowed": 2, "within_tolerance": True}
    assert require_delivery(synthetic, report) is synthetic

    _, _, strict_stats, _ = run_generation(client_factory(openai_server), quotas, metric, llm, columns, sampling, enhancement, holdout, max_shortfall_fraction=0.1)
    strict = build_generation_report(quotas, synthetic, rejects, strict_stats, columns)
    with pytest.raises(DeliveryShortfall, match=r"synthesis delivered 8 of 10 examples, short by 2 \(generation.max_shortfall_fraction 0.1 allows 1\); rejects by reason: \{'request_failed': \d+\}; first failed request: PermanentError: HTTP 400: prompt too long"):
        require_delivery(synthetic, strict)


def test_answer_budgets_follow_each_fields_own_lengths() -> None:
    from judgeforge.pipelines.synthesis.generation import answer_token_budget, field_token_lengths

    rows = pd.DataFrame({"query": ["a b"] * 20, "context": ["w " * 60] * 19 + ["w " * 600]})
    lengths = field_token_lengths(rows, ["query", "context"], lambda texts: [len(t.split()) for t in texts])
    # The 95th percentile: one outlier-long context does not size every call.
    assert lengths["query"] == 2 and lengths["context"] < 100
    one = answer_token_budget(lengths, count=1, ceiling=4096)
    assert one < 200 and answer_token_budget(lengths, count=3, ceiling=4096) > 2 * one
    assert answer_token_budget(lengths, count=10, ceiling=300) == 300
    assert answer_token_budget({"text": 1.0}, count=1, ceiling=4096) == 32


def test_the_shown_examples_fit_the_context_token_budget() -> None:
    from judgeforge.pipelines.synthesis.generation import shots_within

    tokens = {"a": 300, "b": 350, "c": 20, "d": 400, "e": 10}
    ids = ["a", "b", "c", "d", "e"]
    assert shots_within(ids, tokens, None) == ids
    # the leading examples that fit; the first one even when it alone is past the budget
    assert shots_within(ids, tokens, 700) == ["a", "b", "c"]
    assert shots_within(ids, tokens, 100) == ["a"]
    # short rows are all shown
    assert shots_within(["c", "e"], tokens, 100) == ["c", "e"]
    # a pair call's examples go in couples
    assert shots_within(ids, tokens, 700, unit=2) == ["a", "b"]
    assert shots_within(ids, tokens, 100, unit=2) == ["a", "b"]


def test_plain_answers_of_one_example_stop_at_the_example_separator() -> None:
    from judgeforge.pipelines.synthesis.prompts import (
        example_shape,
        generation_request,
        plain_stops,
    )

    rag = example_shape("rag", ["query", "context", "response"])
    assert plain_stops(rag) == plain_stops(example_shape("single", ["text"])) == ("\n###",)
    messages = ({"role": "user", "content": "x"},)
    assert generation_request(messages, rag, 1, False, 0.7, 64, 1).stop == plain_stops(rag)
    assert generation_request(messages, rag, 1, True, 0.7, 64, 1).stop == ()
