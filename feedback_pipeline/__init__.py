"""feedback-pipeline: human feedback on LLM traces, turned into versioned evaluation datasets.

The public SDK lives here under MLflow's names; the Dagster wiring lives in `assets/` and
`sensors/`, assembled by `feedback_pipeline.definitions`.
"""

__version__ = "0.1.0"
