"""The `data_generation.diversity` section (a judgeforge addition): what varies between generation calls.

Attributes with sampled values and joint rates (Oumi synth's `sampled_attributes` /
`combination_sampling`), personas, languages and a user prompt template with expansion
placeholders (Datafast's `{mandatory}` and `{{optional}}`). The generation plan
(judgeforge.pipelines.synthesis.plan) turns them into one row per call.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import pandas as pd
from pydantic import PrivateAttr, ValidationInfo, field_validator

from judgeforge.config.base import (
    Broken,
    LocalPath,
    StrictModel,
    broken,
    judgeforge_field,
    model_rules,
    raise_broken,
)
from judgeforge.config.grounding import InputDocument, TopicTreeConfig
from judgeforge.llm.providers import PROVIDER_NAMES, PROVIDERS

RATE_TOLERANCE = 0.01
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
# `{{name}}`: an optional placeholder, expanded from prompt_expansion.placeholders.
OPTIONAL_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# The mandatory placeholders judgeforge fills in every template (attribute ids come on top).
FILLED_PLACEHOLDERS = {
    "num_examples": "how many examples the call asks for",
    "class_name": "the class's name",
    "class_rubric": "the class's rubric",
    "language": "the language code",
    "language_name": "the language's name",
    "persona": "the persona's description",
    "persona_id": "the persona's id",
    "topic": "the call's topic path (topic_tree or topics)",
    "segment": "the call's document segment (input_documents)",
}
# What `{attribute.<part>}` may name.
VALUE_PARTS = ("id", "name", "description")


def rates_rule(rates: dict[str, float | None], what: str) -> list[Broken]:
    """Return a problem when the given rates sum over 1, or to less than 1 with no value left to share the rest."""
    given = [rate for rate in rates.values() if rate is not None]
    total = sum(given)
    if total > 1 + RATE_TOLERANCE:
        return [Broken((), total, f"the sample_rate values of {what} sum to {total:g}, over 1")]
    if rates and len(given) == len(rates) and abs(total - 1) > RATE_TOLERANCE:
        return [Broken((), total, f"the sample_rate values of {what} sum to {total:g}, not 1")]
    return []


class AttributeValue(StrictModel):
    id: str = judgeforge_field(pattern=IDENTIFIER, description="The value's id (recorded per row).")
    name: str | None = judgeforge_field(
        None, description="How prompts name the value (default: the id)."
    )
    description: str = judgeforge_field(
        "", description="What the value means, for `{attr.description}`."
    )
    sample_rate: float | None = judgeforge_field(
        None, ge=0, le=1, description="Share of calls; values without one share the remainder."
    )

    @property
    def label(self) -> str:
        """Return the name prompts use."""
        return self.name or self.id


class SampledAttribute(StrictModel):
    id: str = judgeforge_field(
        pattern=IDENTIFIER, description="Placeholder and column name (`attr_<id>`)."
    )
    name: str | None = judgeforge_field(None, description="How the default prompt names it.")
    description: str = judgeforge_field("", description="What the attribute is.")
    possible_values: list[AttributeValue] = judgeforge_field(
        min_length=1, description="The values, with optional sample_rate each."
    )

    @model_rules
    def _rules(self) -> list[Broken]:
        """Return broken rate and distinct-value rules."""
        ids = [value.id for value in self.possible_values]
        problems = [
            Broken(("possible_values",), ids, f"value ids must be distinct ({value} repeated)")
            for value in sorted({v for v in ids if ids.count(v) > 1})
        ]
        rates = {value.id: value.sample_rate for value in self.possible_values}
        return problems + [
            Broken(("possible_values", *p.loc), p.value, p.rule)
            for p in rates_rule(rates, f"attribute {self.id}")
        ]

    def shares(self) -> dict[str, float]:
        """Return every value's share: its rate, or an equal part of what the rates leave."""
        return shares_with_remainder({v.id: v.sample_rate for v in self.possible_values})


def shares_with_remainder(rates: dict[str, float | None]) -> dict[str, float]:
    """Return rates with the unset ones sharing 1 - sum(set rates) equally."""
    unset = [key for key, rate in rates.items() if rate is None]
    rest = max(0.0, 1 - sum(rate for rate in rates.values() if rate is not None))
    return {key: rest / len(unset) if rate is None else rate for key, rate in rates.items()}


class CombinationRate(StrictModel):
    combination: dict[str, str] = judgeforge_field(
        min_length=2, description="Attribute id → value id: the values drawn together."
    )
    sample_rate: float = judgeforge_field(
        ge=0, le=1, description="Share of calls that get this combination."
    )


class Persona(StrictModel):
    id: str = judgeforge_field(min_length=1, description="The persona's id (column `persona_id`).")
    description: str = judgeforge_field(min_length=1, description="Who writes, for `{persona}`.")


class Language(StrictModel):
    name: str = judgeforge_field(
        min_length=1, description="The language's name, as prompts say it."
    )
    sample_rate: float | None = judgeforge_field(
        None, ge=0, le=1, description="Share of calls; languages without one share the remainder."
    )


class GeneratorChoice(StrictModel):
    provider: str = judgeforge_field(description=f"One of {', '.join(PROVIDER_NAMES)}.")
    model: str = judgeforge_field(min_length=1, description="The provider's model identifier.")
    weight: float = judgeforge_field(1.0, gt=0, description="Relative share of the calls.")
    base_url: str | None = judgeforge_field(
        None, description="An OpenAI-compatible server's address (default: llm.base_url)."
    )

    @field_validator("provider")
    @classmethod
    def _known(cls, provider: str) -> str:
        if provider not in PROVIDERS:
            raise broken(f"must be one of {', '.join(PROVIDER_NAMES)}")
        return provider

    @property
    def name(self) -> str:
        """Return provider/model, as the plan's `generator` column records it."""
        return f"{self.provider}/{self.model}"


class PromptExpansion(StrictModel):
    placeholders: dict[str, list[str]] = judgeforge_field(
        default_factory=dict, description="`{{name}}` → the values it takes."
    )
    combinatorial: bool = judgeforge_field(
        True, description="Every combination of the values; false: num_random_samples draws."
    )
    num_random_samples: int = judgeforge_field(
        1, ge=1, description="How many random combinations when combinatorial is false."
    )

    @field_validator("placeholders")
    @classmethod
    def _values(cls, placeholders: dict[str, list[str]]) -> dict[str, list[str]]:
        empty = sorted(name for name, values in placeholders.items() if not values)
        if empty:
            raise broken(f"placeholders without values: {', '.join(empty)}")
        return placeholders


class DiversityConfig(StrictModel):
    sampled_attributes: list[SampledAttribute] = judgeforge_field(
        default_factory=list, description="What varies between calls, with value shares."
    )
    combination_sampling: list[CombinationRate] = judgeforge_field(
        default_factory=list, description="Joint rates of value combinations (Oumi)."
    )
    personas: list[Persona] = judgeforge_field(
        default_factory=list, description="Who writes; sampled in equal shares per class."
    )
    personas_file: LocalPath | None = judgeforge_field(
        None,
        description="A CSV or JSONL file of personas (columns id, description), read when the "
        "config is validated and added to `personas`.",
    )
    languages: dict[str, Language] = judgeforge_field(
        default_factory=dict,
        description="Language code → name (or {name, sample_rate}); the language of each call.",
    )
    prompt_expansion: PromptExpansion = judgeforge_field(default_factory=PromptExpansion)
    topic_tree: TopicTreeConfig | None = judgeforge_field(
        None,
        description="A topic tree the generator grows from the metric and the real examples "
        "(DeepFabric); calls are spread over its leaves. Saved as the catalog's topic_tree and "
        "reused by later runs with the same settings.",
    )
    topics: list[str] = judgeforge_field(
        default_factory=list,
        description="Topics given instead of a grown tree; calls are spread over them.",
    )
    input_documents: list[InputDocument] = judgeforge_field(
        default_factory=list,
        description="Documents whose segments ground the calls (Oumi): a rag call's context is "
        "a real segment, other calls write about one.",
    )
    prompt_template: str | None = judgeforge_field(
        None,
        description="The request of each call, replacing the default one: `{placeholders}` "
        "judgeforge fills, `{{placeholders}}` from prompt_expansion.",
    )
    generators: list[GeneratorChoice] = judgeforge_field(
        default_factory=list,
        description="Several generators in one run, each with a weight (share of calls); "
        "empty: the generation llm alone.",
    )
    near_miss_share: float = judgeforge_field(
        0.0,
        ge=0,
        le=1,
        description="Share of each class's examples written in near-miss pairs: one call asks for "
        "two examples that differ as little as possible but fall in neighbouring classes (in "
        "class_labels order); both rows keep the call's `pair_id`.",
    )
    # read from personas_file when the rules run (a config file's part, like an include)
    _file_personas: list[Persona] = PrivateAttr(default_factory=list)

    @field_validator("languages", mode="before")
    @classmethod
    def _name_alone(cls, value: object) -> object:
        # `{en: English}` is the short form of `{en: {name: English}}`
        if isinstance(value, dict):
            return {k: {"name": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("languages")
    @classmethod
    def _language_rates(cls, languages: dict[str, Language]) -> dict[str, Language]:
        rates = {code: language.sample_rate for code, language in languages.items()}
        raise_broken("languages", rates_rule(rates, "languages"))
        return languages

    @field_validator("personas_file")
    @classmethod
    def _readable_personas(cls, path: str | None) -> str | None:
        if path is not None:
            try:
                loaded = read_personas(path)
            except (OSError, ValueError, KeyError) as error:
                raise broken(f"cannot be read as personas: {error}") from None
            if not loaded:
                raise broken("holds no personas")
        return path

    @field_validator("prompt_template")
    @classmethod
    def _fillable(cls, template: str | None, info: ValidationInfo) -> str | None:
        # it reads fields declared before it; when one of them failed, it is reported there
        needed = (
            "sampled_attributes",
            "personas",
            "personas_file",
            "languages",
            "prompt_expansion",
            "topic_tree",
            "topics",
            "input_documents",
        )
        if template is None or any(name not in info.data for name in needed):
            return template
        data = info.data
        has_personas = bool(data["personas"] or data["personas_file"])
        problems = placeholder_problems(
            template,
            {a.id for a in data["sampled_attributes"]},
            set(data["prompt_expansion"].placeholders),
            bool(data["languages"]),
            has_personas,
            bool(data["topic_tree"] or data["topics"]),
            bool(data["input_documents"]),
        )
        raise_broken("prompt_template", [Broken((), template, rule) for rule in problems])
        return template

    @model_rules
    def _rules(self) -> list[Broken]:
        """Return every broken rule between the diversity fields (rates, generators, combinations)."""
        if self.personas_file is not None:
            self._file_personas = read_personas(self.personas_file)
        names = [g.name for g in self.generators]
        problems = [
            Broken(("generators",), names, f"generators must be distinct ({name} repeated)")
            for name in sorted({n for n in names if names.count(n) > 1})
        ]
        attributes = {a.id: a for a in self.sampled_attributes}
        for index, combination in enumerate(self.combination_sampling):
            for attribute, value in combination.combination.items():
                known = attributes.get(attribute)
                if known is None or value not in {v.id for v in known.possible_values}:
                    loc = ("combination_sampling", index, "combination", attribute)
                    problems.append(Broken(loc, value, "names no sampled attribute value"))
        if self.topic_tree is not None and self.topics:
            problems.append(Broken(("topics",), self.topics, "set topic_tree or topics, not both"))
        blank = [i for i, topic in enumerate(self.topics) if not topic.strip()]
        problems += [Broken(("topics", i), "", "a topic cannot be blank") for i in blank]
        total = sum(c.sample_rate for c in self.combination_sampling)
        if total > 1 + RATE_TOLERANCE:
            problems.append(
                Broken(("combination_sampling",), total, f"rates sum to {total:g}, over 1")
            )
        return problems

    @property
    def all_personas(self) -> list[Persona]:
        """Return the inline personas followed by those of personas_file."""
        return [*self.personas, *self._file_personas]


def placeholder_problems(
    template: str,
    attributes: set[str],
    optional: set[str],
    has_languages: bool,
    has_personas: bool,
    has_topics: bool,
    has_documents: bool,
) -> list[str]:
    """Return one line per placeholder of `template` that judgeforge cannot fill."""
    problems = [
        f"{{{{{name}}}}} has no values in prompt_expansion.placeholders"
        for name in OPTIONAL_PLACEHOLDER.findall(template)
        if name not in optional
    ]
    known = sorted({*FILLED_PLACEHOLDERS, *attributes})
    try:
        fields = [
            f for _, f, _, _ in string.Formatter().parse(OPTIONAL_PLACEHOLDER.sub("", template))
        ]
    except ValueError as error:
        return [*problems, f"is not a valid template: {error}"]
    unset = {
        "language": None if has_languages else "languages",
        "persona": None if has_personas else "personas",
        "topic": None if has_topics else "topic_tree or topics",
        "segment": None if has_documents else "input_documents",
    }
    for field in filter(None, fields):
        root, _, part = field.partition(".")
        needs = unset.get(root.removesuffix("_name").removesuffix("_id"))
        if needs:
            problems.append(f"{{{field}}} needs {needs}, and none are set")
        elif root not in known:
            problems.append(f"{{{field}}} is unknown; known: {', '.join(known)}")
        elif part and (root not in attributes or part not in VALUE_PARTS):
            problems.append(
                f"{{{field}}}: only attribute values have parts ({', '.join(VALUE_PARTS)})"
            )
    return problems


def read_personas(path: str) -> list[Persona]:
    """Return the personas of a CSV or JSONL file (columns id and description)."""
    location = Path(path)
    table = (
        pd.read_json(location, lines=True, dtype=str)
        if location.suffix in {".jsonl", ".ndjson"}
        else pd.read_csv(location, dtype=str)
    )
    if table.empty:
        return []
    missing = {"id", "description"} - set(table.columns)
    if missing:
        raise ValueError(f"missing column(s) {', '.join(sorted(missing))}")
    return [
        Persona(id=row["id"], description=row["description"]) for row in table.to_dict("records")
    ]
