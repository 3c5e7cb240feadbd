"""The generation plan: pure, seeded, exact shares; and every plan value reaches the prompt and the row."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from judgeforge.config.data_generation import DatasetColumns, SamplingConfig
from judgeforge.config.diversity import DiversityConfig
from judgeforge.pipelines.synthesis.nodes import generate_synthetic_examples
from judgeforge.pipelines.synthesis.plan import (
    build_generation_plan,
    call_steering,
    expand_templates,
)
from tests.pipelines.synthesis.conftest import generation_config, unique_examples_responder
from tests.support.commands import kedro
from tests.support.loopback_parameters import write_loopback_parameters
from tests.support.openai_server import Reply

TONE = {
    "id": "tone",
    "description": "how the writer sounds",
    "possible_values": [
        {"id": "angry", "description": "furious, capital letters", "sample_rate": 0.5},
        {"id": "polite", "sample_rate": 0.3},
        {"id": "sarcastic"},
    ],
}
LENGTH = {"id": "length", "possible_values": [{"id": "short"}, {"id": "long"}]}


def plan_for(
    diversity: dict, quotas: dict[str, int], metric, llm, enhancement, seed: int = 7, **generation
) -> pd.DataFrame:
    return build_generation_plan(
        quotas,
        enhancement,
        metric,
        llm,
        generation_config(**generation),
        DiversityConfig(**diversity),
        DatasetColumns(features=["text"]),
        SamplingConfig(seed=seed),
    )


def test_attribute_shares_are_exact_per_class_and_unset_values_share_the_rest(
    metric, llm, enhancement
) -> None:
    plan = plan_for({"sampled_attributes": [TONE]}, {"1": 10, "0": 7}, metric, llm, enhancement)
    assert len(plan) == 17
    counts = plan.groupby("class")["attr_tone"].value_counts().unstack(fill_value=0)
    assert counts.loc["1"].to_dict() == {"angry": 5, "polite": 3, "sarcastic": 2}
    # 7 calls: 3.5 / 2.1 / 1.4 → 3 / 2 / 1 plus the largest remainder (angry 0.5)
    assert counts.loc["0"].to_dict() == {"angry": 4, "polite": 2, "sarcastic": 1}


def test_combination_rates_hold_and_the_marginals_still_match(metric, llm, enhancement) -> None:
    diversity = {
        "sampled_attributes": [TONE, LENGTH],
        "combination_sampling": [
            {"combination": {"tone": "angry", "length": "long"}, "sample_rate": 0.4}
        ],
    }
    plan = plan_for(diversity, {"1": 20, "0": 0}, metric, llm, enhancement)
    assert len(plan) == 20
    assert ((plan.attr_tone == "angry") & (plan.attr_length == "long")).sum() >= 8
    assert plan.attr_tone.value_counts().to_dict() == {"angry": 10, "polite": 6, "sarcastic": 4}
    assert plan.attr_length.value_counts().to_dict() == {"long": 10, "short": 10}


def test_personas_languages_and_examples_per_call(metric, llm, enhancement) -> None:
    diversity = {
        "personas": [
            {"id": "student", "description": "a student on a budget"},
            {"id": "nurse", "description": "a night-shift nurse"},
        ],
        "languages": {"en": "English", "fr": {"name": "French", "sample_rate": 0.25}},
    }
    plan = plan_for(diversity, {"1": 7, "0": 8}, metric, llm, enhancement, examples_per_call=2)
    assert plan.groupby("class")["examples"].apply(list).to_dict() == {
        "1": [2, 2, 2, 1],
        "0": [2, 2, 2, 2],
    }
    assert plan.groupby("class")["persona_id"].value_counts().to_dict() == {
        ("0", "nurse"): 2,
        ("0", "student"): 2,
        ("1", "nurse"): 2,
        ("1", "student"): 2,
    }
    assert plan.groupby("class")["language"].value_counts().to_dict() == {
        ("0", "en"): 3,
        ("0", "fr"): 1,
        ("1", "en"): 3,
        ("1", "fr"): 1,
    }
    shown = plan.set_index("plan_call_id")["context_ids"]
    assert all(
        set(ids) <= {"0", "2"} for ids in shown[plan.set_index("plan_call_id")["class"] == "1"]
    )


def test_prompt_expansion_counts_combinatorial_and_sampled() -> None:
    template = "Write {num_examples} {class_name} reviews with a {{tone}} tone for {{audience}}."
    placeholders = {"tone": ["formal", "casual", "technical"], "audience": ["beginners", "experts"]}
    every = DiversityConfig(
        prompt_template=template, prompt_expansion={"placeholders": placeholders}
    )
    variants = expand_templates(every, seed=1)
    assert len(variants) == 6 and len(set(variants)) == 6
    assert "Write {num_examples} {class_name} reviews with a formal tone for beginners." in variants
    sampled = every.model_copy(
        update={
            "prompt_expansion": every.prompt_expansion.model_copy(
                update={"combinatorial": False, "num_random_samples": 4}
            )
        }
    )
    drawn = expand_templates(sampled, seed=1)
    assert len(drawn) == 4 and set(drawn) <= set(variants)
    assert drawn == expand_templates(sampled, seed=1)


def test_the_plan_is_deterministic_and_the_seed_changes_it(metric, llm, enhancement) -> None:
    diversity = {
        "sampled_attributes": [TONE, LENGTH],
        "personas": [{"id": "a", "description": "A"}, {"id": "b", "description": "B"}],
    }
    first = plan_for(diversity, {"1": 12, "0": 12}, metric, llm, enhancement)
    pd.testing.assert_frame_equal(
        first, plan_for(diversity, {"1": 12, "0": 12}, metric, llm, enhancement)
    )
    other = plan_for(diversity, {"1": 12, "0": 12}, metric, llm, enhancement, seed=8)
    assert not first[["attr_tone", "attr_length", "persona_id"]].equals(
        other[["attr_tone", "attr_length", "persona_id"]]
    )
    assert other.attr_tone.value_counts().to_dict() == first.attr_tone.value_counts().to_dict()


def test_template_values_render_with_descriptions(metric, llm, enhancement) -> None:
    diversity = DiversityConfig(
        sampled_attributes=[TONE],
        languages={"fr": "French"},
        prompt_template="Write {num_examples} {class_name} messages in {language_name}, {tone} ({tone.description}), {{channel}}.",
        prompt_expansion={"placeholders": {"channel": ["by email"]}},
    )
    plan = build_generation_plan(
        {"1": 2, "0": 0},
        enhancement,
        metric,
        llm,
        generation_config(),
        diversity,
        DatasetColumns(features=["text"]),
        SamplingConfig(seed=7),
    )
    row = plan[plan.attr_tone == "angry"].iloc[0].to_dict()
    ask, guidance = call_steering(row, diversity, metric.class_labels[0], 1)
    assert (
        ask == "Write 1 complaint messages in French, angry (furious, capital letters), by email."
    )
    assert guidance is None


@pytest.mark.parametrize(
    ("diversity", "expected"),
    [
        (
            {"prompt_template": "Write {num_exampels} of {{style}}"},
            ["{{style}} has no values", "{num_exampels} is unknown"],
        ),
        (
            {
                "sampled_attributes": [
                    {"id": "tone", "possible_values": [{"id": "a", "sample_rate": 1.5}]}
                ]
            },
            ["less than or equal to 1"],
        ),
        (
            {
                "sampled_attributes": [
                    {
                        "id": "tone",
                        "possible_values": [
                            {"id": "a", "sample_rate": 0.7},
                            {"id": "b", "sample_rate": 0.6},
                        ],
                    }
                ]
            },
            ["sum to 1.3, over 1"],
        ),
        ({"sampled_attributes": [{"id": "tone", "possible_values": []}]}, ["at least 1 item"]),
        (
            {"prompt_template": "in {language_name} as {persona}"},
            ["needs languages", "needs personas"],
        ),
    ],
)
def test_bad_diversity_settings_are_each_one_line(diversity, expected) -> None:
    with pytest.raises(ValidationError) as caught:
        DiversityConfig(**diversity)
    text = str(caught.value)
    for fragment in expected:
        assert fragment in text


def test_an_empty_persona_file_is_an_error_and_a_full_one_adds_personas(tmp_path) -> None:
    empty = tmp_path / "personas.csv"
    empty.write_text("id,description\n")
    with pytest.raises(ValidationError, match="holds no personas"):
        DiversityConfig(personas_file=str(empty))
    full = tmp_path / "personas.jsonl"
    full.write_text(
        '{"id": "chef", "description": "a chef"}\n{"id": "pilot", "description": "a pilot"}\n'
    )
    assert [p.id for p in DiversityConfig(personas_file=str(full)).all_personas] == [
        "chef",
        "pilot",
    ]


def test_every_plan_value_reaches_the_prompt_and_the_row(
    openai_server, client_factory, metric, llm, columns, sampling, enhancement, holdout
) -> None:
    openai_server.respond_with(unique_examples_responder())
    diversity = DiversityConfig(
        sampled_attributes=[TONE, LENGTH],
        personas=[{"id": "student", "description": "a student on a budget"}],
        languages={"de": "German"},
    )
    generation = generation_config()
    quotas = {"1": 3, "0": 3}
    plan = build_generation_plan(
        quotas, enhancement, metric, llm, generation, diversity, columns, sampling
    )
    synthetic, *_ = generate_synthetic_examples(
        plan,
        quotas,
        enhancement,
        holdout,
        metric,
        llm,
        generation,
        diversity,
        columns,
        sampling,
        client_factory(openai_server),
    )
    assert len(synthetic) == 6
    prompts = [request.last_user_message for request in openai_server.requests]
    assert all(
        "Write them as this person would: a student on a budget" in p
        and "Write them in German." in p
        for p in prompts
    )
    by_call = plan.set_index("plan_call_id")
    for row in synthetic.to_dict("records"):
        planned = by_call.loc[row["plan_call_id"]]
        assert (row["attr_tone"], row["attr_length"], row["persona_id"], row["language"]) == (
            planned.attr_tone,
            planned.attr_length,
            "student",
            "de",
        )
        assert row["generator"] == "openai/test-model"
    sent = sorted(re.search(r"- tone: (\w+).*\n- length: (\w+)", p).groups() for p in prompts)
    assert sent == sorted(zip(plan.attr_tone, plan.attr_length))
    assert "- tone: angry (furious, capital letters)" in "".join(prompts)


def test_kedro_run_writes_the_plan_rows_keep_its_values_and_diagnostics_measure_them(
    project_copy: Path, openai_server
) -> None:
    chat = unique_examples_responder()
    openai_server.respond_with(
        lambda request: Reply() if request.path.endswith("/embeddings") else chat(request)
    )
    personas = project_copy / "personas.csv"
    personas.write_text("id,description\nretiree,a retired teacher\ncourier,a bike courier\n")
    write_loopback_parameters(
        project_copy,
        openai_server.base_url,
        generation={
            "total_examples": 8,
            "examples_per_call": 1,
            "async_config": {"max_concurrent_requests": 2, "max_retries": 1},
        },
        diversity={
            "sampled_attributes": [TONE],
            "personas_file": str(personas),
            "languages": {"es": "Spanish"},
        },
    )
    done = kedro(project_copy, "run", "--pipelines", "ingestion,synthesis,diagnostics", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    plan = pd.read_parquet(project_copy / "data/02_intermediate/generation_plan.parquet")
    synthetic = pd.read_parquet(project_copy / "data/03_primary/synthetic_examples.parquet")
    generation_calls = [r for r in openai_server.requests if r.path.endswith("/chat/completions")]
    assert len(plan) == len(synthetic) == len(generation_calls) == 8
    assert set(plan.persona_id) == {"retiree", "courier"} and set(plan.language) == {"es"}
    merged = synthetic.merge(plan, on="plan_call_id", suffixes=("", "_planned"))
    assert (merged.attr_tone == merged.attr_tone_planned).all() and (
        merged.persona_id == merged.persona_id_planned
    ).all()
    prompts = "\n".join(request.last_user_message for request in generation_calls)
    assert prompts.count("Write them in Spanish.") == 8
    assert prompts.count("a retired teacher") == prompts.count("a bike courier") == 4
    summary = json.loads(
        (project_copy / "data/generated_data/artifacts/diagnostics_summary.json").read_text()
    )
    coverage = summary["coverage"]
    assert coverage["status"] == "ok"
    assert set(coverage["per_value"]) == {"attr_tone", "language", "persona_id", "generator"}
    assert sum(v["rows"] for v in coverage["per_value"]["attr_tone"].values()) == 8
    assert set(coverage["shares"]["attr_tone"]) == {"angry", "polite", "sarcastic"}
    assert set(coverage["overall"]) == {"precision", "recall", "density", "coverage"}


def test_several_generators_share_the_calls_by_weight_and_the_report_breaks_down_by_generator(
    project_copy: Path, openai_server
) -> None:
    openai_server.respond_with(unique_examples_responder())
    write_loopback_parameters(
        project_copy,
        openai_server.base_url,
        generation={
            "total_examples": 8,
            "examples_per_call": 1,
            "label_distribution": {"1": 0.5, "0": 0.5},
        },
        diversity={
            "generators": [
                {"provider": "openai", "model": "big-model", "weight": 3},
                {
                    "provider": "openai",
                    "model": "small-model",
                    "weight": 1,
                    "base_url": openai_server.base_url,
                },
            ]
        },
    )
    done = kedro(project_copy, "run", "--pipelines", "ingestion,synthesis", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    models = [request.body["model"] for request in openai_server.requests]
    assert sorted(models) == ["big-model"] * 6 + ["small-model"] * 2
    synthetic = pd.read_parquet(project_copy / "data/03_primary/synthetic_examples.parquet")
    assert synthetic.generator.value_counts().to_dict() == {
        "openai/big-model": 6,
        "openai/small-model": 2,
    }
    report = json.loads((project_copy / "data/08_reporting/generation_report.json").read_text())
    by_generator = report["by_generator"]
    assert {
        name: (row["calls"], row["delivered"], row["rejected"])
        for name, row in by_generator.items()
    } == {
        "openai/big-model": (6, 6, 0),
        "openai/small-model": (2, 2, 0),
    }
    assert by_generator["openai/small-model"]["usage"]["succeeded"] == 2
    assert report["usage"]["succeeded"] == 8


def test_a_generator_without_credentials_fails_before_any_call(
    project_copy: Path, openai_server, monkeypatch
) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    write_loopback_parameters(
        project_copy,
        openai_server.base_url,
        generation={"total_examples": 4},
        diversity={
            "generators": [
                {"provider": "openai", "model": "big-model"},
                {"provider": "gemini", "model": "gemini-2.0-flash"},
            ]
        },
    )
    done = kedro(project_copy, "run", "--pipelines", "ingestion,synthesis", timeout=300)
    assert done.returncode != 0
    assert "no API key for provider 'gemini'" in done.stderr
    assert openai_server.requests == []


def test_a_local_model_gets_the_plan_values_in_its_final_request_only(
    metric, enhancement, holdout
) -> None:
    from judgeforge.config.data_generation import LLMConfig
    from judgeforge.pipelines.synthesis.generation import ExampleGenerator
    from judgeforge.pipelines.synthesis.prompts import example_shape

    class LocalStub:
        provider = "local"

        def count_tokens(self, texts):
            return [len(text.split()) for text in texts]

    local, generation = LLMConfig(provider="local"), generation_config(context_examples=2)
    diversity = DiversityConfig(sampled_attributes=[TONE], languages={"it": "Italian"})
    plan = build_generation_plan(
        {"1": 1, "0": 0},
        enhancement,
        metric,
        local,
        generation,
        diversity,
        DatasetColumns(features=["text"]),
        SamplingConfig(seed=7),
    )
    generator = ExampleGenerator(
        LocalStub(),
        metric,
        local,
        generation,
        diversity,
        example_shape("single", ["text"]),
        enhancement,
        holdout,
        "label",
        7,
    )
    messages = generator.planned_call(plan.iloc[0].to_dict()).request.messages
    asks = [m.content for m in messages if m.role == "user"]
    assert asks[:-1] == ["Write one new complaint example."] * 2
    assert asks[-1].startswith(
        "Write one new complaint example. Give the new examples these properties:\n- tone: "
    )
    assert asks[-1].endswith("Write them in Italian.")
