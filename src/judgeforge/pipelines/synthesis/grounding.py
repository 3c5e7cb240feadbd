"""What grounds generation calls besides the real examples: a topic tree and document segments.

The topic tree (DeepFabric) grows level by level: each topic of a level is one call asking for
`degree` subtopics, `depth` levels below the root (the metric, or `topic_prompt`). The grown
tree is saved with the settings it was grown for; a later run with the same settings reuses it
without any call. Documents (Oumi's `input_documents`) are cut into segments of
`segment_length` characters or tokens, each sharing `segment_overlap` with the one before.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from tokenizers import Tokenizer

from judgeforge.config.data_generation import DatasetColumns, LLMConfig, MetricConfig
from judgeforge.config.diversity import DiversityConfig
from judgeforge.config.grounding import (
    SegmentationParams,
    SegmentationStrategy,
    TopicTreeConfig,
    tokenizer_file,
)
from judgeforge.errors import UserError
from judgeforge.llm import ChatMessage, LLMRequest
from judgeforge.llm.providers import PROVIDERS
from judgeforge.pipelines.synthesis.plan import TOPIC_SEPARATOR, stable_seed, topic_paths

log = logging.getLogger(__name__)

SEGMENT_COLUMNS = ["segment_id", "source", "document", "start", "end", "text"]
TOPIC_SYSTEM_PROMPT = (
    "You divide a subject into specific, distinct subtopics, to generate varied training data "
    "about it. Follow the output format exactly and write nothing else."
)
# What the tree prompt shows of the real examples and the documents.
SHOWN_EXAMPLES = 3
SHOWN_SEGMENTS = 2
SHOWN_CHARS = 300
MAX_TOPIC_CHARS = 120
# A listed line: "- topic", "* topic", "1. topic", "2) topic".
LISTED = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+(.+?)\s*$")


class DocumentError(UserError, ValueError):
    """A document of input_documents that cannot be used."""


class TopicTreeError(UserError, ValueError):
    """A topic tree that cannot be grown."""


def segment_documents(documents: pd.DataFrame, diversity: DiversityConfig) -> pd.DataFrame:
    """Return the segments of the parsed documents (a failed one skipped only when its entry says so)."""
    segments: list[dict[str, Any]] = []
    names = document_names(documents["document"].tolist())
    for row in documents.to_dict("records"):
        entry = diversity.input_documents[int(row["source"])]
        where = f"data_generation.diversity.input_documents[{int(row['source'])}]"
        problem = row["error"] or ("" if str(row["text"]).strip() else "it holds no text")
        if problem:
            if not entry.skip_unparseable:
                raise DocumentError(
                    f"{where}: {row['document']} cannot be parsed ({problem}); fix or remove it, "
                    "or set skip_unparseable: true"
                )
            log.warning(
                "%s: skipped %s, which cannot be parsed (%s)", where, row["document"], problem
            )
            continue
        spans = segment_spans(str(row["text"]), entry.segmentation_params)
        for index, (start, end) in enumerate(spans):
            segments.append(
                {
                    "segment_id": f"{names[row['document']]}#{entry.segmentation_params.id}{index}",
                    "source": entry.id or entry.path,
                    "document": row["document"],
                    "start": start,
                    "end": end,
                    "text": str(row["text"])[start:end].strip(),
                }
            )
    if diversity.input_documents and not segments:
        raise DocumentError(
            "data_generation.diversity.input_documents: no document could be parsed into text"
        )
    return pd.DataFrame(segments, columns=SEGMENT_COLUMNS)


def document_names(paths: list[str]) -> dict[str, str]:
    """Return each document's name in segment ids: its file name, or its path when two share one."""
    basenames = [Path(path).name for path in paths]
    return {p: b if basenames.count(b) == 1 else p for p, b in zip(paths, basenames)}


def segment_spans(text: str, params: SegmentationParams) -> list[tuple[int, int]]:
    """Return the (start, end) character spans of a text's segments, whitespace-only ones left out."""
    if params.segmentation_strategy == SegmentationStrategy.TOKENS:
        tokenizer = Tokenizer.from_file(str(tokenizer_file(str(params.tokenizer))))
        offsets = tokenizer.encode(text, add_special_tokens=False).offsets
        windows = windows_of(len(offsets), params.segment_length, params.segment_overlap)
        spans = [(offsets[first][0], offsets[last - 1][1]) for first, last in windows]
    else:
        spans = windows_of(len(text), params.segment_length, params.segment_overlap)
    return [(start, end) for start, end in spans if text[start:end].strip()]


def windows_of(size: int, length: int, overlap: int) -> list[tuple[int, int]]:
    """Return [start, end) windows of `length` over `size` items, each sharing `overlap` with the previous."""
    windows = []
    for start in range(0, size, length - overlap):
        windows.append((start, min(start + length, size)))
        if start + length >= size:
            break
    return windows


def grow_topic_tree(
    saved: Mapping[str, Any] | None,
    enhancement: pd.DataFrame,
    metric: MetricConfig,
    llm: LLMConfig,
    diversity: DiversityConfig,
    columns: DatasetColumns,
    segments: pd.DataFrame,
    generator_llm: Any,
) -> dict[str, Any]:
    """Return the topic tree: the saved one when grown for the same settings, else grown now.

    Without topic_tree or topics, the saved tree (or {}) is returned as it is: a run without
    topics does not overwrite a tree paid for; the plan leaves it unused.
    """
    saved = saved if isinstance(saved, Mapping) else {}
    if diversity.topics:
        return {"settings": {"topics": diversity.topics}, "root": tree_of(diversity.topics)}
    config = diversity.topic_tree
    if config is None:
        return dict(saved)
    settings = {
        "topic_prompt": config.topic_prompt or f"{metric.name}: {metric.description or ''}".strip(),
        "degree": config.degree,
        "depth": config.depth,
        "generator": f"{generator_llm.provider}/{generator_llm.model}",
    }
    if saved and saved.get("settings") == settings:
        log.info("topic tree: reusing the saved tree (%d topics)", len(topic_paths(saved)))
        return dict(saved)
    if saved:
        log.info("topic tree: the saved tree was grown for other settings; growing a new one")
    grounding = tree_grounding(enhancement, columns, segments)
    root: dict[str, Any] = {"topic": settings["topic_prompt"], "subtopics": []}
    level: list[tuple[list[str], dict[str, Any]]] = [([], root)]
    for _ in range(config.depth):
        requests = [
            topic_request(settings["topic_prompt"], path, config, grounding, llm, generator_llm)
            for path, _ in level
        ]
        answers = generator_llm.generate_sync(requests)
        next_level = []
        for (path, node), answer in zip(level, answers):
            for topic in subtopics(answer, path or [settings["topic_prompt"]], config.degree):
                child = {"topic": topic, "subtopics": []}
                node["subtopics"].append(child)
                next_level.append(([*path, topic], child))
        level = next_level
    return {"settings": settings, "root": root}


def tree_of(topics: list[str]) -> dict[str, Any]:
    """Return a one-level tree whose leaves are the given topics."""
    return {"topic": "", "subtopics": [{"topic": topic, "subtopics": []} for topic in topics]}


def tree_grounding(
    enhancement: pd.DataFrame, columns: DatasetColumns, segments: pd.DataFrame
) -> str:
    """Return the real examples (and document excerpts) the tree prompt shows."""
    examples = [
        " | ".join(str(row[f])[:SHOWN_CHARS] for f in columns.features)
        for row in enhancement.head(SHOWN_EXAMPLES).to_dict("records")
    ]
    parts = ["Real examples:\n" + "\n".join(f"- {e}" for e in examples)] if examples else []
    excerpts = [str(text)[:SHOWN_CHARS] for text in segments["text"].head(SHOWN_SEGMENTS)]
    if excerpts:
        parts.append(
            "Excerpts of the domain's documents:\n" + "\n".join(f"- {e}" for e in excerpts)
        )
    return "\n\n".join(parts)


def topic_request(
    subject: str,
    path: list[str],
    config: TopicTreeConfig,
    grounding: str,
    llm: LLMConfig,
    generator_llm: Any,
) -> LLMRequest:
    """Return the request for the subtopics of one topic of the tree."""
    structured = PROVIDERS[generator_llm.provider].structured_output
    topic = path[-1] if path else subject
    within = f"\nTopic path: {TOPIC_SEPARATOR.join(path)}" if path else ""
    answer_format = (
        'Answer with JSON only: {"subtopics": ["...", ...]}'
        if structured
        else "Write one subtopic per line, each line starting with '- '."
    )
    user = "\n\n".join(
        part
        for part in (
            f"Subject: {subject}{within}",
            grounding,
            (
                f'List {config.degree} distinct, specific subtopics of "{topic}" that real data '
                "about the subject covers, each a short phrase."
            ),
            answer_format,
        )
        if part
    )
    schema = {
        "type": "object",
        "properties": {"subtopics": {"type": "array", "items": {"type": "string"}}},
        "required": ["subtopics"],
        "additionalProperties": False,
    }
    return LLMRequest(
        messages=(ChatMessage("system", TOPIC_SYSTEM_PROMPT), ChatMessage("user", user)),
        temperature=llm.temperature,
        max_tokens=config.degree * 32 + 64,
        json_schema=schema if structured else None,
        schema_name="subtopics",
        seed=stable_seed("topic_tree", subject, *path),
    )


def subtopics(answer: Any, path: list[str], degree: int) -> list[str]:
    """Return up to `degree` distinct subtopics from an answer, or raise TopicTreeError when it holds none."""
    where = TOPIC_SEPARATOR.join(path)
    if not answer.ok:
        raise TopicTreeError(
            f"data_generation.diversity.topic_tree: the request for the subtopics of "
            f"{where!r} failed ({answer.error}); the answers so far are cached"
        )
    listed = answer_topics(answer.text)
    found: list[str] = []
    for topic in listed:
        cleaned = topic.strip().strip("\"'`").rstrip(".;,").strip()
        if 0 < len(cleaned) <= MAX_TOPIC_CHARS and cleaned.lower() not in {
            t.lower() for t in [*found, path[-1]]
        }:
            found.append(cleaned)
    if not found:
        start = answer.text.strip()[:80]
        raise TopicTreeError(
            f"data_generation.diversity.topic_tree cannot be grown: the generator's answer for "
            f"the subtopics of {where!r} lists none ({start!r}); use a generator that follows "
            "the format, or give diversity.topics"
        )
    return found[:degree]


def answer_topics(text: str) -> list[str]:
    """Return the topics an answer lists: a JSON {"subtopics": [...]}, else lines starting with a bullet or number."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return [m.group(1) for m in map(LISTED.match, text.splitlines()) if m]
    items = parsed.get("subtopics") if isinstance(parsed, dict) else None
    return [item for item in items if isinstance(item, str)] if isinstance(items, list) else []
