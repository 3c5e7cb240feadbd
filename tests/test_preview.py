"""`judgeforge preview` and `judgeforge.preview_generation` on the loopback server: plan, first calls, estimate."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import yaml

from judgeforge import preview_generation, run_data_generation
from tests.run_yaml import EXAMPLES, loopback_run_yaml
from tests.support.commands import judgeforge
from tests.support.openai_server import Reply

COMPLAINTS = next(path for path in EXAMPLES if path.stem == "binary_single_customer_complaint")
DIVERSITY = {
    "sampled_attributes": [
        {
            "id": "tone",
            "possible_values": [{"id": "angry", "description": "furious"}, {"id": "weary"}],
        }
    ],
    "personas": [{"id": "student", "description": "a student on a budget"}],
}


def text_answers():
    """Return a responder answering each generation call with one example of about twenty words."""
    counter = itertools.count()

    def respond(request) -> Reply:
        return Reply.json(
            {
                "examples": [
                    {
                        "text": f"Generated complaint number {next(counter)} "
                        + "about a late parcel " * 4
                    }
                ]
            }
        )

    return respond


def preview_yaml(server, tmp_path: Path) -> Path:
    return loopback_run_yaml(
        COMPLAINTS,
        server.base_url,
        tmp_path / "run.yaml",
        run_steps=["data_generation"],
        data_generation__diversity=DIVERSITY,
        data_generation__generation__total_examples=12,
    )


def test_preview_command_prints_rows_with_their_attributes_and_the_estimate(
    project_copy: Path, openai_server, tmp_path: Path
) -> None:
    openai_server.respond_with(text_answers())
    run_yaml = preview_yaml(openai_server, tmp_path)
    result = judgeforge(
        project_copy, "preview", "-c", str(run_yaml), "-n", "3", env={"COLUMNS": "250"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(openai_server.requests) == 3
    out = result.stdout
    assert "3 rows from the first calls of the plan" in out
    assert "attr_tone" in out and "persona_id" in out and "student" in out
    assert "Estimate of the full run (12 planned calls; prices as of 2026-06)" in out
    assert "openai/test-model" in out and "no price" in out and "measured" in out


def test_the_estimate_matches_what_the_full_run_then_sends(
    project_copy: Path, openai_server, tmp_path: Path
) -> None:
    openai_server.respond_with(text_answers())
    run_yaml = preview_yaml(openai_server, tmp_path)
    preview = preview_generation(run_yaml, calls=4, project_path=project_copy)
    assert len(preview.rows) == 4 and set(preview.rows.attr_tone) <= {"angry", "weary"}
    [estimate] = preview.estimates
    assert estimate.calls == len(preview.plan) == 12
    assert estimate.token_method.startswith("measured")
    assert estimate.wall_time_s is not None and estimate.cost_usd is None

    run_data_generation(run_yaml, project_path=project_copy)
    generation = [r for r in openai_server.requests if r.path.endswith("/chat/completions")]
    assert len(generation) == 12  # preview 4 + run 8: the previewed calls came from the cache
    # the loopback server counts a prompt's words as its tokens
    sent = sum(len(str(m["content"]).split()) for r in generation for m in r.body["messages"])
    assert abs(estimate.prompt_tokens - sent) <= 0.1 * sent
    # every answer has the same length, so the preview's mean is exact
    answer = json.dumps(
        {"examples": [{"text": "Generated complaint number 0 " + "about a late parcel " * 4}]}
    )
    assert estimate.completion_tokens == 12 * len(answer.split())


def test_bad_diversity_settings_are_listed_together_one_line_each(tmp_path: Path, capsys) -> None:
    from judgeforge.command_line import main

    config = yaml.safe_load(COMPLAINTS.read_text())
    empty = tmp_path / "personas.jsonl"
    empty.write_text("")
    config["data_generation"]["diversity"] = {
        "sampled_attributes": [
            {"id": "tone", "possible_values": [{"id": "angry", "sample_rate": 1.2}]},
            {"id": "length", "possible_values": []},
        ],
        "personas_file": str(empty),
        "languages": {"en": {"name": "English", "sample_rate": 0.5}},
        "generators": [{"provider": "openia", "model": "gpt-4o"}],
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    assert main(["validate", "-c", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "(5 problems)" in err
    assert (
        "data_generation.diversity.sampled_attributes[0].possible_values[0].sample_rate: 1.2 — Input should be less than or equal to 1"
        in err
    )
    assert "data_generation.diversity.sampled_attributes[1].possible_values: [] —" in err
    assert "personas.jsonl' — holds no personas" in err
    assert (
        "data_generation.diversity.languages: 0.5 — the sample_rate values of languages sum to 0.5, not 1"
        in err
    )
    assert "data_generation.diversity.generators[0].provider: 'openia' — must be one of" in err


def test_a_batch_run_is_previewed_online_and_estimated_at_the_batch_price(
    project_copy: Path, openai_server, tmp_path: Path
) -> None:
    from judgeforge.llm import DEFAULT_PRICES
    from judgeforge.llm.providers import OPENAI_BATCH_PRICE_FACTOR

    openai_server.respond_with(text_answers())
    priced = {"provider": "openai", "model": "gpt-4o-mini", "base_url": openai_server.base_url}
    online_yaml = loopback_run_yaml(
        COMPLAINTS,
        openai_server.base_url,
        tmp_path / "online.yaml",
        run_steps=["data_generation"],
        data_generation__llm={**priced, "embedding_model": "text-embedding-3-small"},
        data_generation__generation__total_examples=12,
    )
    config = yaml.safe_load(online_yaml.read_text())
    config["data_generation"]["generation"]["async_config"]["batch"] = True
    batch_yaml = tmp_path / "batch.yaml"
    batch_yaml.write_text(yaml.safe_dump(config, sort_keys=False))

    [batched] = preview_generation(batch_yaml, calls=4, project_path=project_copy).estimates
    assert openai_server.batches == {}  # the preview's calls went out online
    list_price = DEFAULT_PRICES["gpt-4o-mini"].cost(
        batched.prompt_tokens, batched.completion_tokens
    )
    assert batched.cost_usd == round(list_price * OPENAI_BATCH_PRICE_FACTOR, 4) > 0

    run_data_generation(batch_yaml, project_path=project_copy)
    [batch] = openai_server.batches.values()
    assert batch["request_counts"]["total"] == 8  # the previewed calls came from the cache
