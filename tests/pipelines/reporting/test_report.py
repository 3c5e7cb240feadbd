"""The report through the public doors (`kedro run --pipelines ...,reporting`, `judgeforge report`), opened in a real headless Chromium.

One small real run per module: ingestion, synthesis, labelling and diagnostics against the
loopback OpenAI-compatible server (local MiniLM embeddings), then training of a tiny random
Llama judge, each run with `reporting` composed in.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from judgeforge.command_line import main
from tests.conftest import copy_project
from tests.run_yaml import EXAMPLES
from tests.support.browser import HeadlessChromium, chromium_executable
from tests.support.commands import kedro
from tests.support.openai_server import OpenAIServer, Reply
from tests.support.tiny_judge import save_tiny_llama

SECTIONS = ["run", "ingestion", "generation", "diagnostics", "labelling", "judge"]
REPORT = Path("data/08_reporting/report.html")
REQUESTED_CLASS = re.compile(r"new, different examples? of class (\w+):")
# Words that make the scripted judge call a message a complaint (so it disagrees with some labels).
COMPLAINT_WORDS = ("refund", "broken", "damaged", "late", "charged", "wrong")
# What the page reports back: section ids, each image decoded (its natural width, 0 when broken), scripts.
PAGE_FACTS = """
Promise.all(Array.from(document.images).map(image => image.decode().then(() => [image.alt, image.naturalWidth], () => [image.alt, 0])))
  .then(images => ({
    sections: Array.from(document.querySelectorAll("section[id]")).map(section => section.id),
    headings: Array.from(document.querySelectorAll("section h2")).map(heading => heading.textContent),
    images: images,
    scripts: document.scripts.length,
    text: document.body.innerText,
  }))
"""


def scripted_llm():
    """Return a responder: generation gets one example per call (every fifth answer is not JSON); the judge answers by keywords."""
    counter = itertools.count()

    def respond(request) -> Reply:
        schema = request.body.get("response_format", {}).get("json_schema", {}).get("name")
        message = request.last_user_message
        if schema == "judge_label":
            word = next((w for w in COMPLAINT_WORDS if w in message.lower()), None)
            return Reply.json(
                {"label": "1", "rationale": f"mentions '{word}': a problem to fix"}
                if word
                else {"label": "0", "rationale": "nothing the store must fix"}
            )
        number = next(counter)
        if number % 5 == 4:
            return Reply.text("Sorry, here is no JSON.")
        wanted = REQUESTED_CLASS.search(message).group(1)
        detail = (
            "my order arrived damaged, I want a refund"
            if wanted == "complaint"
            else "do you ship to Norway?"
        )
        return Reply.json({"examples": [{"text": f"Message {number}: {detail}"}]})

    return respond


def require_chromium() -> None:
    """Skip when no Chromium is installed, except in CI (CI=true), where the browser test must run."""
    if chromium_executable() is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(
                "CI is set but no Chromium is installed: run `bash scripts/install.sh --dev` as root"
            )
        pytest.skip(
            "Chromium is not installed (scripts/install.sh --dev installs it when run as root with apt)"
        )


def small_run_parameters(base_url: str, tiny_model: Path) -> str:
    """Return conf/local parameters for a small run: loopback generator and judge, a tiny judge model."""
    return f"""
data_generation:
  metric:
    llmaj_source_prompt: "Is this customer message a complaint?\\nMessage: {{text}}"
  llm:
    provider: openai
    model: test-model
    embedding_model: all-MiniLM-L6-v2
    base_url: {base_url}
  generation:
    total_examples: 12
    async_config: {{max_concurrent_requests: 4, max_retries: 1}}
  labelling:
    enabled: true
training:
  training:
    num_train_epochs: 1
    learning_rate_multiplier: 25.0
    max_seq_length: 128
  model:
    name: {tiny_model}
"""


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run data generation with reporting composed in, then training with reporting; return the project and the first report."""
    project = copy_project(tmp_path_factory.mktemp("report-run") / "project")
    tiny_model = save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
    with OpenAIServer() as server:
        server.respond_with(scripted_llm())
        (project / "conf/local/parameters_small_run.yml").write_text(
            small_run_parameters(server.base_url, tiny_model)
        )
        generation = kedro(
            project, "run", "--pipelines", "ingestion,synthesis,labelling,diagnostics,reporting"
        )
        assert generation.returncode == 0, generation.stderr[-3000:]
        before_training = (project / REPORT).read_text(encoding="utf-8")
        training = kedro(project, "run", "--pipelines", "training,reporting")
        assert training.returncode == 0, training.stderr[-3000:]
    return {"project": project, "before_training": before_training}


def test_reporting_composed_with_stages_runs_after_them(small_run: dict) -> None:
    # a fresh project: the first report can only show generation if it ran after synthesis
    html = small_run["before_training"]
    assert "12 of 12 requested examples delivered by openai / test-model" in html
    assert "The training stage has not run" in html
    final = (small_run["project"] / REPORT).read_text(encoding="utf-8")
    assert "The training stage has not run" not in final and "fine-tuned judge" in final


def test_report_opens_in_a_headless_browser_with_every_section_and_image(small_run: dict) -> None:
    require_chromium()
    with HeadlessChromium() as browser:
        page = browser.open((small_run["project"] / REPORT).as_uri(), PAGE_FACTS)
    facts = page.value
    assert page.console_errors == []
    assert facts["sections"] == SECTIONS
    assert facts["headings"] == [
        "The run",
        "Ingestion",
        "Generation",
        "Diagnostics",
        "Labelling",
        "The judge",
    ]
    assert "has not run" not in facts["text"] and "switched off" not in facts["text"]
    titles = [alt for alt, _ in facts["images"]]
    assert titles == [
        "requested and delivered synthetic examples per class",
        "drift histogram",
        "drift rate by class",
        "UMAP",
        "scores",
        "per-class F1",
        "reliability",
    ]
    assert all(width > 0 for _, width in facts["images"]), facts["images"]
    assert facts["scripts"] == 0
    # self-contained: the page itself and its inline images, nothing else
    assert [url for url in page.requests if not url.startswith("data:")] == [
        (small_run["project"] / REPORT).as_uri()
    ]
    for expected in (
        "Rejected answers by reason",
        "invalid_output",
        "Most drifted synthetic rows",
        "Disagreements with the judge",
        "Worst mistakes on real rows",
    ):
        assert expected in facts["text"]


def test_judgeforge_report_rewrites_the_report_from_the_outputs_on_disk(small_run: dict) -> None:
    project = small_run["project"]
    (project / REPORT).unlink()
    result = subprocess.run(
        [sys.executable, "-m", "judgeforge", "report"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"report: {project / REPORT}" in result.stdout
    html = (project / REPORT).read_text(encoding="utf-8")
    assert re.findall(r'<section id="(\w+)">', html) == SECTIONS
    assert "has not run" not in html


def test_reporting_alone_in_a_fresh_project_says_no_stage_has_run(project_copy: Path) -> None:
    result = kedro(project_copy, "run", "--pipelines", "reporting")
    assert result.returncode == 0, result.stderr[-3000:]
    html = (project_copy / REPORT).read_text(encoding="utf-8")
    for stage in ("ingestion", "synthesis", "diagnostics", "labelling", "training"):
        assert f"The {stage} stage has not run" in html


def test_browser_check_catches_console_errors_and_broken_images(tmp_path: Path) -> None:
    require_chromium()
    page_file = tmp_path / "broken.html"
    page_file.write_text(
        '<img alt="broken" src="data:image/png;base64,bm90IGEgcG5n"><script>console.error("boom")</script>'
    )
    with HeadlessChromium() as browser:
        page = browser.open(page_file.as_uri(), PAGE_FACTS)
    assert page.console_errors == ["boom"]
    assert page.value["images"] == [["broken", 0]]


def test_judgeforge_report_with_a_run_yaml_uses_its_parameters(project_copy: Path, capsys) -> None:
    example = next(path for path in EXAMPLES if path.stem == "binary_tuple_answer_relevance")
    assert main(["report", "-c", str(example), "--project-path", str(project_copy)]) == 0
    assert f"report: {project_copy / REPORT}" in capsys.readouterr().out
    html = (project_copy / REPORT).read_text(encoding="utf-8")
    assert "judgeforge report · answer_relevance" in html
    assert "The ingestion stage has not run" in html


def test_an_output_that_cannot_be_read_is_one_line_naming_it(project_copy: Path, capsys) -> None:
    broken = project_copy / "data/08_reporting/ingestion_report.json"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text("{cut off")
    assert main(["report", "--project-path", str(project_copy)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("judgeforge: ingestion_report: ") and error.endswith(
        "(re-run the stage that writes it, or delete the file)"
    )
    assert "\n" not in error
    assert not (project_copy / REPORT).exists()
