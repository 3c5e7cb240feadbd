"""Labelling nodes: derive the metric, judge the train rows, report agreement, apply the disagreement policy.

Disagreement policy (`labelling.disagreement_policy`), applied to synthetic train rows whose
valid judge label differs from the generator's: `keep` leaves them as generated, `relabel` takes
the judge's label, `drop` removes them. Seed rows are never changed, and neither is a row whose
judge answer stayed invalid (its label is never guessed).
"""

from __future__ import annotations

import logging
from typing import Any

import datasets
import pandas as pd
import yaml

from judgeforge.config.data_generation import (
    DatasetColumns,
    DisagreementPolicy,
    LabellingConfig,
    MetricConfig,
    OutputConfig,
)
from judgeforge.llm.asking import REQUEST_FAILED
from judgeforge.llm.errors import DeliveryShortfall, shortfall
from judgeforge.pipelines.labelling.judge import JudgeStatus, judge_rows
from judgeforge.pipelines.labelling.metric_extraction import (
    derive_metric,
    missing_parts,
    pasteable_metric,
)
from judgeforge.schema import ROW_ID, SOURCE, SYNTHETIC_SOURCE

log = logging.getLogger(__name__)

JUDGE_LABEL = "judge_label"
RATIONALE = "rationale"
GENERATOR_LABEL = "generator_label"
AGREE = "agree"
STATUS = "status"
ATTEMPTS = "attempts"
DETAIL = "detail"
JUDGE_COLUMNS = [ROW_ID, SOURCE, JUDGE_LABEL, RATIONALE, GENERATOR_LABEL, AGREE, STATUS, ATTEMPTS, DETAIL]
# Invalid answers listed by row in the report; the full list is in judge_labels.
INVALID_EXAMPLES = 20


def extract_metric(metric: MetricConfig, labelling: LabellingConfig, judge_llm: Any) -> tuple[MetricConfig, dict[str, Any]]:
    """Return the metric with what it leaves out derived from llmaj_source_prompt, and a pasteable record of it."""
    missing = missing_parts(metric)
    if not missing:
        return metric, {"derived": [], **pasteable_metric(metric)}
    resolved = derive_metric(judge_llm, metric, labelling.invalid_answer_retries)
    record = {"derived": missing, "model": f"{judge_llm.provider}/{judge_llm.model}", **pasteable_metric(resolved)}
    log.info(
        "derived %s from llmaj_source_prompt; paste this under data_generation to keep it:\n%s",
        ", ".join(missing),
        yaml.safe_dump(pasteable_metric(resolved), sort_keys=False, allow_unicode=True),
    )
    return resolved, record


def train_rows(generated_dataset: datasets.DatasetDict, output: OutputConfig) -> pd.DataFrame:
    """Return the train split of the generated dataset as a table."""
    return generated_dataset[output.dataset.splits.train].to_pandas()


def judge_train_rows(
    rows: pd.DataFrame, metric: MetricConfig, columns: DatasetColumns, labelling: LabellingConfig, judge_llm: Any
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Return the judge's label for every row (no call when labelling is off) and the judge's usage."""
    if not labelling.enabled:
        return pd.DataFrame(columns=JUDGE_COLUMNS), {"status": "disabled"}
    verdicts = judge_rows(judge_llm, metric, columns.features, rows.to_dict("records"), labelling.invalid_answer_retries)
    generator = rows[columns.label] if columns.label and columns.label in rows else pd.Series([None] * len(rows), index=rows.index)
    table = pd.DataFrame(
        {
            ROW_ID: rows[ROW_ID].astype(str).to_numpy(),
            SOURCE: rows[SOURCE].to_numpy() if SOURCE in rows else None,
            JUDGE_LABEL: [v.label for v in verdicts],
            RATIONALE: [v.rationale for v in verdicts],
            GENERATOR_LABEL: generator.to_numpy(),
            STATUS: [v.status.value for v in verdicts],
            ATTEMPTS: [v.attempts for v in verdicts],
            DETAIL: [v.detail for v in verdicts],
        }
    )
    compared = (table[STATUS] == JudgeStatus.OK) & table[GENERATOR_LABEL].notna()
    table[AGREE] = pd.array([(j == g) if c else None for j, g, c in zip(table[JUDGE_LABEL], table[GENERATOR_LABEL], compared)], dtype="boolean")
    invalid = int((table[STATUS] != JudgeStatus.OK).sum())
    if invalid:
        log.warning("the judge gave no valid answer for %d of %d rows; they are listed as invalid in judge_labels", invalid, len(table))
    stats = {"status": "ok", "provider": judge_llm.provider, "model": judge_llm.model, "usage": judge_llm.usage.as_dict()}
    return table[JUDGE_COLUMNS], stats


def require_labels(judge_labels: pd.DataFrame, labelling_report: dict[str, Any]) -> pd.DataFrame:
    """Return the judge labels when failed requests left few enough rows unlabelled (else raise)."""
    gap = labelling_report.get("unlabelled_by_failed_requests")
    if gap is None or gap["within_tolerance"]:
        return judge_labels
    raise DeliveryShortfall(
        f"the judge could not label {gap['short_by']} of {len(judge_labels)} rows because its requests failed "
        f"(labelling.max_unlabelled_fraction {gap['max_shortfall_fraction']:g} allows {gap['allowed']}); "
        f"first failure: {gap['first_error']}. The labels and every paid answer are kept: a re-run continues from the cache"
    )


def policy_actions(judge_labels: pd.DataFrame, policy: DisagreementPolicy) -> pd.Series:

    """Return keep / relabel / drop per judged row: only synthetic rows the judge validly disagrees with change."""
    disagrees = judge_labels[AGREE].eq(False).fillna(False) & (judge_labels[SOURCE] == SYNTHETIC_SOURCE)
    keep = DisagreementPolicy.KEEP
    return pd.Series([policy if d else keep for d in disagrees], index=judge_labels.index, dtype="object")


def apply_disagreement_policy(
    generated_dataset: datasets.DatasetDict, judge_labels: pd.DataFrame, columns: DatasetColumns, labelling: LabellingConfig, output: OutputConfig
) -> datasets.DatasetDict:
    """Return the dataset to train on: the generated one with the policy applied to its train split."""
    if not labelling.enabled:
        return generated_dataset
    split = output.dataset.splits.train
    train = generated_dataset[split].to_pandas()
    actions = dict(zip(judge_labels[ROW_ID], policy_actions(judge_labels, labelling.disagreement_policy)))
    judged = dict(zip(judge_labels[ROW_ID], judge_labels[JUDGE_LABEL]))
    row_actions = train[ROW_ID].astype(str).map(lambda row_id: actions.get(row_id, DisagreementPolicy.KEEP))
    label = columns.label_column
    train[label] = [judged[r] if a == DisagreementPolicy.RELABEL else value for r, a, value in zip(train[ROW_ID].astype(str), row_actions, train[label])]
    train = train[row_actions != DisagreementPolicy.DROP].reset_index(drop=True)
    splits = dict(generated_dataset)
    splits[split] = datasets.Dataset.from_pandas(train, features=generated_dataset[split].features, preserve_index=False)
    return datasets.DatasetDict(splits)


def build_labelling_report(
    judge_labels: pd.DataFrame, judge_stats: dict[str, Any], metric: MetricConfig, labelling: LabellingConfig
) -> dict[str, Any]:
    """Return agreement overall, per class and per source, the confusion matrix, invalid answers, policy effect and cost."""
    if not labelling.enabled:
        return {"status": "disabled"}
    keys = metric.label_keys()
    valid = judge_labels[STATUS] == JudgeStatus.OK
    compared = judge_labels[valid & judge_labels[GENERATOR_LABEL].notna()]
    invalid = judge_labels[~valid]
    failed = invalid[invalid[DETAIL].str.startswith(REQUEST_FAILED)]
    actions = policy_actions(judge_labels, labelling.disagreement_policy).value_counts()
    return {
        "status": "ok",
        "judge": {"provider": judge_stats["provider"], "model": judge_stats["model"]},
        "rows_judged": len(judge_labels),
        "valid_answers": int(valid.sum()),
        "invalid_answers": len(invalid),
        "invalid_examples": invalid[[ROW_ID, ATTEMPTS, DETAIL]].head(INVALID_EXAMPLES).to_dict("records"),
        "judge_label_counts": {key: int((judge_labels[JUDGE_LABEL] == key).sum()) for key in keys},
        "agreement": {
            "overall": _agreement(compared),
            "per_class": {key: _agreement(compared[compared[GENERATOR_LABEL] == key]) for key in keys},
            "per_source": {str(s): _agreement(group) for s, group in compared.groupby(SOURCE, sort=True)},
        },
        "confusion_matrix": {
            "rows": "generator label",
            "columns": "judge label",
            "labels": keys,
            "counts": [[int(((compared[GENERATOR_LABEL] == g) & (compared[JUDGE_LABEL] == j)).sum()) for j in keys] for g in keys],
        },
        "disagreement_policy": {
            "policy": labelling.disagreement_policy.value,
            "relabelled": int(actions.get(DisagreementPolicy.RELABEL, 0)),
            "dropped": int(actions.get(DisagreementPolicy.DROP, 0)),
        },
        "usage": judge_stats["usage"],
        "unlabelled_by_failed_requests": {
            **shortfall(len(judge_labels), len(judge_labels) - len(failed), labelling.max_unlabelled_fraction),
            "first_error": next(iter(failed[DETAIL]), None),
        },
    }


def _agreement(compared: pd.DataFrame) -> dict[str, Any]:
    agree = int(compared[AGREE].sum()) if len(compared) else 0
    return {"compared": len(compared), "agree": agree, "rate": round(agree / len(compared), 4) if len(compared) else None}
