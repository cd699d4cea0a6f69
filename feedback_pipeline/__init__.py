"""feedback-pipeline: human feedback on LLM traces, turned into versioned evaluation datasets.

The public SDK lives here under MLflow's names (imported lazily, so `import feedback_pipeline`
stays fast); the Dagster wiring lives in `assets/` and `sensors/`, assembled by
`feedback_pipeline.definitions`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "AssessmentSource": "feedback_pipeline.entities",
    "Assessment": "feedback_pipeline.entities",
    "Feedback": "feedback_pipeline.entities",
    "Expectation": "feedback_pipeline.entities",
    "log_feedback": "feedback_pipeline.submissions",
    "log_expectation": "feedback_pipeline.submissions",
    "override_feedback": "feedback_pipeline.submissions",
    "update_assessment": "feedback_pipeline.submissions",
    "delete_assessment": "feedback_pipeline.submissions",
    "search_assessments": "feedback_pipeline.assessments",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'feedback_pipeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
