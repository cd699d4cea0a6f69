"""feedback-pipeline: human feedback on LLM traces, turned into versioned evaluation datasets.

The public SDK lives here under MLflow's names; the Dagster wiring lives in `assets/` and
`sensors/`, assembled by `feedback_pipeline.definitions`.
"""

__version__ = "0.1.0"

_LAZY = {
    "load_evaluation_dataset": "feedback_pipeline.datasets",
    "list_evaluation_datasets": "feedback_pipeline.datasets",
    "EvaluationDataset": "feedback_pipeline.datasets",
}


def __getattr__(name: str):
    """Public names imported on first use, so `import feedback_pipeline` stays fast."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'feedback_pipeline' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
