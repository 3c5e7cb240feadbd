"""Topic trees and documents as grounding: real files parsed and segmented, trees grown on a loopback server, both doors."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import docx
import pandas as pd
import pytest
import yaml
from fpdf import FPDF
from kedro.io.core import DatasetError
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

from judgeforge.config.data_generation import MetricConfig
from judgeforge.config.diversity import DiversityConfig
from judgeforge.config.problems import ConfigError
from judgeforge.config.run import load_run_config, validate_run_config
from judgeforge.datasets.documents import DocumentsDataset, DocumentsExtraMissing
from judgeforge.errors import user_error_in
from judgeforge.pipelines.synthesis.grounding import (
    DocumentError,
    TopicTreeError,
    grow_topic_tree,
    segment_documents,
)
from judgeforge.pipelines.synthesis.plan import build_generation_plan, call_steering, topic_paths
from tests.pipelines.synthesis.conftest import generation_config, unique_examples_responder
from tests.support.commands import judgeforge, kedro
from tests.support.loopback_parameters import write_loopback_parameters
from tests.support.openai_server import Reply, example_answers

WARRANTY = (
    "The warranty covers parts and labour for two years from the date of purchase. "
    "Batteries are covered for six months. Damage from water or drops is not covered."
)
RETURNS = "Returns are accepted within 30 days when the item comes back with its receipt."
SHIPPING = "Orders placed before noon ship the same day; others ship the next working day."
REFUNDS = "Refunds reach the original card within five working days of the return."
METRIC = MetricConfig(
    name="complaint",
    description="Whether a customer message is a complaint.",
    type="binary",
    input_format="single",
    class_labels=[
        {"name": "complaint", "label": 1, "rubric": "The customer reports a problem."},
        {"name": "other", "label": 0, "rubric": "Anything else."},
    ],
)


def write_documents(folder: Path) -> dict[str, Path]:
    """Write a two-page PDF, a DOCX, an HTML page and a Markdown file; return them by type."""
    folder.mkdir(parents=True, exist_ok=True)
    pdf = FPDF()
    for text in (WARRANTY, RETURNS):
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, text)
    pdf.output(str(folder / "manual.pdf"))
    document = docx.Document()
    document.add_paragraph(SHIPPING)
    document.add_paragraph(REFUNDS)
    document.save(str(folder / "policy.docx"))
    (folder / "faq.html").write_text(
        "<html><head><title>FAQ</title><style>p {color: red}</style></head><body>"
        f"<h1>Questions</h1><p>{SHIPPING.replace('same day', '<b>same day</b>')}</p>"
        "<script>var tracking = 1;</script></body></html>",
        encoding="utf-8",
    )
    (folder / "notes.md").write_text(f"# Notes\n\n{REFUNDS}\n", encoding="utf-8")
    return {p.suffix: p for p in folder.iterdir()}


def documents_config(paths: list[str], **segmentation) -> DiversityConfig:
    params = {"segment_length": 60, "segment_overlap": 20, **segmentation}
    return DiversityConfig(
        input_documents=[{"path": p, "segmentation_params": params} for p in paths]
    )


def test_each_document_type_is_parsed_and_segmented_with_overlap(tmp_path: Path) -> None:
    files = write_documents(tmp_path / "docs")
    diversity = documents_config([str(tmp_path / "docs" / "*")])
    documents = DocumentsDataset(paths=[str(tmp_path / "docs" / "*")]).load()
    texts = dict(zip(documents.document.map(lambda p: Path(p).suffix), documents.text))
    assert set(texts) == {".pdf", ".docx", ".html", ".md"} and not documents.error.any()
    assert "two years" in texts[".pdf"] and "30 days" in texts[".pdf"]  # both pages
    assert texts[".docx"].splitlines() == [SHIPPING, REFUNDS]  # paragraph by paragraph
    assert "same day" in texts[".html"] and "tracking" not in texts[".html"]
    assert "<" not in texts[".html"]

    segments = segment_documents(documents, diversity)
    assert segments.segment_id.is_unique
    for document, rows in segments.groupby("document"):
        text = texts[Path(document).suffix]
        rows = rows.sort_values("start")
        assert rows.start.iloc[0] == 0 and rows.end.iloc[-1] == len(text)
        assert ((rows.end - rows.start) <= 60).all()
        # each segment starts 40 characters after the one before: 20 shared with it
        assert (rows.start.diff().dropna() == 40).all()
        for start, end, segment in zip(rows.start, rows.end, rows.text):
            assert segment == text[start:end].strip()
    assert (
        segments[segments.document == str(files[".pdf"])].segment_id.iloc[0]
        == "manual.pdf#segment0"
    )


def test_token_segments_follow_the_tokenizer(tmp_path: Path) -> None:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    tokenizer = Tokenizer(
        WordLevel({w: i for i, w in enumerate(["[UNK]", *words])}, unk_token="[UNK]")
    )
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "greek.txt").write_text(" ".join(words), encoding="utf-8")
    diversity = documents_config(
        [str(tmp_path / "greek.txt")],
        segmentation_strategy="TOKENS",
        tokenizer=str(tmp_path),
        segment_length=4,
        segment_overlap=1,
    )
    segments = segment_documents(
        DocumentsDataset(paths=[str(tmp_path / "greek.txt")]).load(), diversity
    )
    assert segments.text.tolist() == [
        "alpha beta gamma delta",
        "delta epsilon zeta eta",
        "eta theta iota kappa",
    ]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"path": "nowhere/*.pdf"}, "matches no file"),
        ({"path": "empty.txt"}, "is empty"),
        ({"path": "sheet.xlsx"}, "is not a supported document type"),
        (
            {
                "path": "notes.txt",
                "segmentation_params": {"segment_length": 50, "segment_overlap": 80},
            },
            "must be shorter than segment_length (50)",
        ),
        (
            {"path": "notes.txt", "segmentation_params": {"segmentation_strategy": "TOKENS"}},
            "required when segmentation_strategy is TOKENS",
        ),
        (
            {
                "path": "notes.txt",
                "segmentation_params": {
                    "segmentation_strategy": "TOKENS",
                    "tokenizer": "notes.txt",
                },
            },
            "cannot be read as a tokenizer",
        ),
    ],
)
def test_bad_documents_fail_validation_with_one_line(
    raw_config, tmp_path: Path, entry: dict, expected: str
) -> None:
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "sheet.xlsx").write_bytes(b"PK")
    (tmp_path / "notes.txt").write_text(RETURNS)
    raw_config["data_generation"]["diversity"] = {"input_documents": [entry]}
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text(yaml.safe_dump(raw_config))
    with pytest.raises(ConfigError) as failure:
        load_run_config(run_yaml)  # paths are relative to the run YAML's folder
    lines = [line for line in str(failure.value).splitlines() if "input_documents" in line]
    assert len(lines) == 1 and expected in lines[0], str(failure.value)


def test_a_document_that_fails_to_parse_stops_or_is_skipped_by_name(tmp_path: Path, caplog) -> None:
    write_documents(tmp_path / "docs")
    (tmp_path / "docs" / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    pattern = str(tmp_path / "docs" / "*")
    documents = DocumentsDataset(paths=[pattern]).load()
    with pytest.raises(
        DocumentError, match=r"broken\.pdf cannot be parsed .*skip_unparseable: true"
    ):
        segment_documents(documents, documents_config([pattern]))
    skipping = DiversityConfig(input_documents=[{"path": pattern, "skip_unparseable": True}])
    with caplog.at_level(logging.WARNING):
        segments = segment_documents(documents, skipping)
    assert "broken.pdf" in caplog.text and not segments.document.str.endswith("broken.pdf").any()
    assert segments.document.nunique() == 4


def subtopic_responder(counter: list[int]):
    """Answer subtopic requests with two numbered topics and generation calls with a new example."""
    examples = unique_examples_responder()

    def respond(request) -> Reply:
        prompt = request.last_user_message
        if "subtopics of" not in prompt:
            return examples(request)
        counter.append(1)
        parent = prompt.split('subtopics of "')[1].split('"')[0][:20]
        return Reply.json({"subtopics": [f"{parent} part {len(counter)}{n}" for n in "ab"]})

    return respond


def test_a_topic_tree_grows_degree_by_depth_and_spreads_the_calls_over_its_leaves(
    openai_server, client_factory, enhancement, llm, columns, sampling
) -> None:
    asked: list[int] = []
    openai_server.respond_with(subtopic_responder(asked))
    diversity = DiversityConfig(topic_tree={"degree": 2, "depth": 2})
    client = client_factory(openai_server)
    tree = grow_topic_tree(
        None, enhancement, METRIC, llm, diversity, columns, pd.DataFrame(columns=["text"]), client
    )
    leaves = topic_paths(tree)
    assert len(asked) == 3 and len(leaves) == 4 and len(set(leaves)) == 4
    assert all(leaf.count(" > ") == 1 for leaf in leaves)
    prompts = [r.last_user_message for r in openai_server.requests]
    assert all("My parcel never came" in p for p in prompts)  # real examples ground the tree
    plan = build_generation_plan(
        {"1": 10, "0": 6},
        enhancement,
        METRIC,
        llm,
        generation_config(),
        diversity,
        columns,
        sampling,
        tree,
    )
    for _, calls in plan.groupby("class"):
        counts = calls.topic.value_counts()
        assert set(counts.index) <= set(leaves) and counts.sum() == len(calls)
        assert counts.max() - counts.min() <= 1 and len(counts) == min(4, len(calls))


def test_a_run_without_topics_keeps_the_saved_tree_and_its_plan_ignores_it(
    enhancement, llm, columns, sampling
) -> None:
    saved = {
        "settings": {"topics": ["a", "b"]},
        "root": {"topic": "", "subtopics": [{"topic": "a"}]},
    }
    kept = grow_topic_tree(
        saved,
        enhancement,
        METRIC,
        llm,
        DiversityConfig(),
        columns,
        pd.DataFrame(columns=["text"]),
        None,
    )
    assert kept == saved
    plan = build_generation_plan(
        {"1": 2, "0": 2},
        enhancement,
        METRIC,
        llm,
        generation_config(),
        DiversityConfig(),
        columns,
        sampling,
        kept,
    )
    assert (plan.topic == "").all() and (plan.segment_id == "").all()


def test_a_topic_tree_the_generator_answers_junk_for_fails_with_one_line(
    openai_server, client_factory, enhancement, llm, columns
) -> None:
    openai_server.respond_with(lambda request: Reply.text("Sure! Here you go: topics are nice."))
    with pytest.raises(TopicTreeError) as failure:
        grow_topic_tree(
            None,
            enhancement,
            METRIC,
            llm,
            DiversityConfig(topic_tree={"degree": 3, "depth": 1}),
            columns,
            pd.DataFrame(columns=["text"]),
            client_factory(openai_server),
        )
    message = str(failure.value)
    assert "\n" not in message and "cannot be grown" in message and "Sure! Here" in message


def rag_run_yaml(project: Path, folder: Path, server_url: str, total: int) -> Path:
    """Write a rag run YAML in `folder` with documents (relative to it) and a topic tree."""
    raw = yaml.safe_load((project / "examples/binary_rag_faithfulness.yaml").read_text())
    raw["run_steps"] = ["data_generation"]
    generation = raw["data_generation"]
    generation["source_data"]["dataset"]["csv"]["file_path"] = str(
        project / "examples/data/rag_faithfulness.jsonl"
    )
    generation["llm"] = {
        "provider": "openai",
        "model": "test-model",
        "embedding_model": "text-embedding-3-small",
        "base_url": server_url,
    }
    generation["generation"].update(total_examples=total, special_instructions=None)
    generation["data_quality_metrics"]["enabled"] = False
    generation["diversity"] = {
        "topic_tree": {"degree": 2, "depth": 2},
        "input_documents": [
            {
                "path": "docs/*",
                "segmentation_params": {"segment_length": 120, "segment_overlap": 30},
            }
        ],
    }
    run_yaml = folder / "run.yaml"
    run_yaml.write_text(yaml.safe_dump(raw))
    return run_yaml


def test_rag_contexts_are_real_segments_and_the_saved_tree_is_reused_without_a_call(
    project_copy: Path, tmp_path: Path, openai_server
) -> None:
    asked: list[int] = []
    topics = subtopic_responder(asked)
    openai_server.respond_with(
        lambda request: (
            topics(request)
            if "subtopics of" in request.last_user_message
            else example_answers(request)
        )
    )
    write_documents(tmp_path / "runs" / "docs")
    run_yaml = rag_run_yaml(project_copy, tmp_path / "runs", openai_server.base_url, total=6)
    done = judgeforge(project_copy, "run", "-c", str(run_yaml))
    assert done.returncode == 0, done.stderr[-3000:]

    intermediate = project_copy / "data/02_intermediate"
    tree = yaml.safe_load((intermediate / "topic_tree.yml").read_text())
    leaves = topic_paths(tree)
    assert len(asked) == 3 and len(leaves) == 4
    segments = pd.read_parquet(intermediate / "document_segments.parquet")
    assert set(segments.document.map(lambda p: Path(p).name)) == {
        "manual.pdf",
        "policy.docx",
        "faq.html",
        "notes.md",
    }
    plan = pd.read_parquet(intermediate / "generation_plan.parquet")
    assert plan.segment_id.isin(segments.segment_id).all() and plan.topic.isin(leaves).all()
    synthetic = pd.read_parquet(project_copy / "data/03_primary/synthetic_examples.parquet")
    assert len(synthetic) == 6
    texts = dict(zip(segments.segment_id, segments.text))
    # the context of every row is the real segment its plan row names, word for word
    assert (synthetic.context == synthetic.segment_id.map(texts)).all()
    assert synthetic.topic.isin(leaves).all()
    assert synthetic["query"].str.startswith("Generated query").all()
    calls = [r for r in openai_server.requests if "subtopics of" not in r.last_user_message]
    for request in calls:
        prompt = request.last_user_message
        assert "- context:" not in prompt  # the model writes query and response only
        assert any(text in prompt for text in texts.values())
        assert "- Topic: " in prompt

    # a second run, its answers cache gone: the tree comes from the catalog, no subtopic call
    (intermediate / "llm_cache.sqlite").unlink()
    openai_server.reset()
    asked.clear()
    openai_server.respond_with(
        lambda request: (
            topics(request)
            if "subtopics of" in request.last_user_message
            else example_answers(request)
        )
    )
    again = judgeforge(project_copy, "run", "-c", str(run_yaml))
    assert again.returncode == 0, again.stderr[-3000:]
    assert asked == [] and len(openai_server.requests) >= 6
    assert yaml.safe_load((intermediate / "topic_tree.yml").read_text()) == tree


def test_kedro_run_spreads_calls_over_a_given_topic_list(project_copy: Path, openai_server) -> None:
    openai_server.respond_with(unique_examples_responder())
    write_loopback_parameters(
        project_copy,
        openai_server.base_url,
        generation={"total_examples": 9, "examples_per_call": 1},
        diversity={"topics": ["billing", "delivery", "returns"]},
    )
    done = kedro(project_copy, "run", "--pipelines", "ingestion,synthesis")
    assert done.returncode == 0, done.stderr[-3000:]
    synthetic = pd.read_parquet(project_copy / "data/03_primary/synthetic_examples.parquet")
    assert sorted(synthetic.topic.value_counts().tolist()) == [3, 3, 3]
    prompts = [r.last_user_message for r in openai_server.requests]
    assert len(prompts) == 9 and all("subtopics of" not in p for p in prompts)
    assert sum("- Topic: delivery" in p for p in prompts) == 3
    tree = yaml.safe_load((project_copy / "data/02_intermediate/topic_tree.yml").read_text())
    assert topic_paths(tree) == ["billing", "delivery", "returns"]


def test_topic_tree_and_topics_together_is_one_config_line(raw_config) -> None:
    raw_config["data_generation"]["diversity"] = {"topic_tree": {"depth": 1}, "topics": ["a"]}
    with pytest.raises(ConfigError, match="set topic_tree or topics, not both"):
        validate_run_config(raw_config)


def test_a_prompt_template_naming_segment_needs_documents(raw_config) -> None:
    raw_config["data_generation"]["diversity"] = {"prompt_template": "Write about {segment}."}
    with pytest.raises(ConfigError, match=r"\{segment\} needs input_documents"):
        validate_run_config(raw_config)


def error_line(result: subprocess.CompletedProcess) -> str:
    """Return the one-line error a failed `judgeforge run` ends with (exit status 2, no traceback)."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()][-1]


def test_judgeforge_run_stops_on_an_unparseable_document_before_any_call(
    project_copy: Path, tmp_path: Path, openai_server
) -> None:
    openai_server.respond_with(example_answers)
    write_documents(tmp_path / "runs" / "docs")
    (tmp_path / "runs" / "docs" / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    run_yaml = rag_run_yaml(project_copy, tmp_path / "runs", openai_server.base_url, total=2)
    line = error_line(judgeforge(project_copy, "run", "-c", str(run_yaml)))
    assert line.startswith("judgeforge: ") and "broken.pdf cannot be parsed" in line
    assert openai_server.requests == []  # neither the topic tree nor any example was paid for


def test_judgeforge_run_stops_with_one_line_when_the_tree_cannot_be_grown(
    project_copy: Path, tmp_path: Path, openai_server
) -> None:
    openai_server.respond_with(lambda request: Reply.json({"topics": "whatever you like"}))
    write_documents(tmp_path / "runs" / "docs")
    run_yaml = rag_run_yaml(project_copy, tmp_path / "runs", openai_server.base_url, total=2)
    line = error_line(judgeforge(project_copy, "run", "-c", str(run_yaml)))
    assert "topic_tree cannot be grown" in line and "give diversity.topics" in line
    assert len(openai_server.requests) == 1  # the root's subtopics; no example call followed


def test_prompt_templates_place_the_topic_and_the_segment(tmp_path: Path) -> None:
    (tmp_path / "refunds.txt").write_text(REFUNDS)
    diversity = DiversityConfig(
        topics=["billing"],
        input_documents=[{"path": str(tmp_path / "refunds.txt")}],
        prompt_template="Write {num_examples} about {topic}, grounded in: {segment}",
    )
    row = {
        "topic": "billing",
        "language": "",
        "persona_id": "",
        "prompt_template": diversity.prompt_template,
    }
    ask, guidance = call_steering(row, diversity, METRIC.class_labels[0], 2, "Refunds take 5 days.")
    assert ask == "Write 2 about billing, grounded in: Refunds take 5 days." and guidance is None


def test_a_missing_parser_is_one_line_naming_the_extra(tmp_path: Path, monkeypatch) -> None:
    files = write_documents(tmp_path / "docs")
    monkeypatch.setitem(sys.modules, "pypdf", None)  # as if pypdf were not installed
    with pytest.raises(
        ValueError, match=r"need the package pypdf: pip install 'judgeforge\[documents\]'"
    ):
        DiversityConfig(input_documents=[{"path": str(files[".pdf"])}])
    # Kedro wraps a dataset's error; both doors report the user error behind it, in one line
    with pytest.raises(DatasetError) as failure:
        DocumentsDataset(paths=[str(files[".pdf"])]).load()
    missing = user_error_in(failure.value)
    assert isinstance(missing, DocumentsExtraMissing) and "judgeforge[documents]" in str(missing)
