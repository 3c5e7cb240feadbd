"""The run config's part of the catalog: folders, the seed source and LLM clients, as one mapping.

The project's config loader (judgeforge.config_loader) adds this mapping to the globals as
`run`; the entries of conf/base/catalog_*.yml read it with `${globals:run.<key>}` and write
every file name themselves. The run config's relative paths are anchored here, once, at its
folder (a run YAML's own folder; the project folder for the parameters in conf/): a path under
`data/` lives under the catalog's `data_root` (so one value moves every output to an object
store; a relative data_root starts at that folder too), any other relative path in that folder.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from judgeforge.config import RunConfig
from judgeforge.config.data_generation import DataGenerationConfig
from judgeforge.config.run import judge_output_dir
from judgeforge.llm.providers import LOCAL_EMBEDDING_MODELS
from judgeforge.publishing.object_store import archive_url

RUN_GLOBALS = "run"
DATA_ROOT = "data_root"
# The project folder that `data_root` stands for in relative paths of the parameters.
DATA_FOLDER = "data"


def project_location(path: str, folder: Path) -> str:
    """Return a local relative path anchored at `folder` (as Kedro does for the catalog); absolute paths and URLs as given."""
    if "://" in path or Path(path).is_absolute():
        return path
    return str(folder / path)


def output_location(path: str, folder: Path, data_root: str) -> str:
    """Return where an output lives: a relative path under `data/` moves under data_root, others as project_location."""
    relative = PurePosixPath(path)
    if (
        "://" in path
        or relative.is_absolute()
        or not relative.parts
        or relative.parts[0] != DATA_FOLDER
    ):
        return project_location(path, folder)
    root = project_location(data_root, folder).rstrip("/")
    return "/".join([root, *relative.parts[1:]])


def run_globals(
    config: RunConfig, project_path: Path, data_root: str, config_folder: Path
) -> dict[str, Any]:
    """Return every value the catalog takes from the run config (null where a section is absent).

    The config's relative paths start at `config_folder`; the project's own files (the response
    cache) live in `project_path`.
    """
    generation, training = config.data_generation, config.training

    def output(path: str) -> str:
        return output_location(path, config_folder, data_root)

    def local(path: str) -> str:
        return project_location(path, config_folder)

    values: dict[str, Any] = {
        "project": str(project_path),
        "seed": {
            "source_type": "csv",
            "file_path": None,
            "hf_name": None,
            "hf_split": None,
            "hf_revision": "",
        },
        "label_only_train_file": None,
        "generated_dataset": None,
        "final_dataset": None,
        "artifacts": None,
        "drift_scores_file": None,
        "faiss_index_dir": None,
        "clients": dict.fromkeys(
            ("generator_llm", "generators", "judge_llm", "embedding_client", "engine")
        ),
        "training_dataset": {"path": None, "archive_url": None},
        "judge": None,
        "documents": [],
    }
    if generation is not None:
        source = generation.source_data.dataset
        quality = generation.data_quality_metrics
        values |= {
            "seed": {
                "source_type": source.source_type,
                "file_path": local(source.csv.file_path) if source.csv.file_path else None,
                "hf_name": source.huggingface.name,
                "hf_split": source.huggingface.split,
                "hf_revision": source.huggingface.revision,
            },
            "label_only_train_file": local(source.csv.train_file_path)
            if source.csv.train_file_path
            else None,
            "generated_dataset": output(generation.generated_dataset_path),
            "final_dataset": output(generation.dataset_path),
            "artifacts": output(
                f"{generation.output.local_path.rstrip('/')}/{quality.artifact_subdir}"
            ),
            "drift_scores_file": quality.drift.output_filename,
            "faiss_index_dir": output(quality.drift.index_dir.rstrip("/")),
            "clients": llm_clients(generation),
            "documents": [
                local(document.path) for document in generation.diversity.input_documents
            ],
        }
    if training is not None:
        dataset = training.dataset
        path = (
            f"{dataset.local_path.rstrip('/')}/{dataset.name}"
            if dataset.local_path
            else dataset.name
        )
        pulled = dataset.pull_from_object_store
        values["training_dataset"] = {
            # a pulled archive is unpacked into a local folder
            "path": local(path) if pulled else output(path),
            "archive_url": archive_url(
                str(dataset.object_store_bucket), str(dataset.object_store_blob), dataset.name
            )
            if pulled
            else None,
        }
        # the judge loads from a local folder: it stays in the project, whatever data_root says
        values["judge"] = local(judge_output_dir(config))
    return values


def llm_clients(config: DataGenerationConfig) -> dict[str, Any]:
    """Return the generator, judge and embedding clients' settings, and the engine settings they share."""
    llm = config.llm

    def chat(provider: str, model: str, base_url: str | None = None) -> dict[str, Any]:
        # the primary llm's address and API version only apply to its own provider
        same_provider = provider == llm.provider
        return {
            "provider": provider,
            "model": model,
            "embedding_model": None,
            "base_url": base_url or (llm.base_url if same_provider else None),
            "api_version": llm.api_version if same_provider else None,
            "local_workers": llm.local_workers,
        }

    local_embeddings = llm.embedding_model in LOCAL_EMBEDDING_MODELS
    engine = config.generation.async_config
    return {
        "generator_llm": chat(*config.generator),
        # diversity.generators: one client each (datasets.LLMClientPoolDataset)
        "generators": [chat(g.provider, g.model, g.base_url) for g in config.diversity.generators],
        "judge_llm": chat(*config.judge),
        "embedding_client": {
            "provider": "local" if local_embeddings else llm.provider,
            "model": None if local_embeddings else llm.model,
            "embedding_model": llm.embedding_model,
            "base_url": None if local_embeddings else llm.base_url,
            "api_version": None if local_embeddings else llm.api_version,
            # embeddings are sent online; the batch API here carries chat calls only
            "batch": False,
        },
        "engine": engine.model_dump(),
    }
