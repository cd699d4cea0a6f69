"""feedback-pipeline: human feedback on LLM traces, turned into versioned evaluation datasets.

The public SDK lives here under MLflow's names. The Dagster shell (`assets/` and `sensors/`,
installed as `feedback_pipeline_dagster`) is assembled by `feedback_pipeline_dagster.definitions`
and imports this package, never the other way round. SDK names are imported on first use (module
`__getattr__`), so `import feedback_pipeline` stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "feedback_pipeline.input_types": (
        "InputCategorical", "InputCategoricalList", "InputNumeric", "InputText", "InputTextList", "InputPassFail",
    ),
    "feedback_pipeline.schemas": (
        "LabelSchema", "create_label_schema", "get_label_schema", "list_label_schemas", "delete_label_schema",
        "EXPECTED_FACTS", "EXPECTED_RESPONSE", "GUIDELINES",
    ),
    "feedback_pipeline.sessions": (
        "LabelingSession", "create_labeling_session", "get_labeling_session", "get_labeling_sessions",
        "delete_labeling_session",
    ),
    "feedback_pipeline.entities": ("AssessmentSource", "AssessmentError", "Assessment", "Feedback", "Expectation"),
    "feedback_pipeline.submissions": (
        "log_feedback", "log_expectation", "override_feedback", "update_assessment", "delete_assessment",
    ),
    "feedback_pipeline.search": ("search_assessments",),
    "feedback_pipeline.datasets": ("load_evaluation_dataset", "list_evaluation_datasets", "EvaluationDataset"),
    "feedback_pipeline.assessment_checks": ("InvalidAssessment",),
    "feedback_pipeline.home": ("FeedbackHome",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["__version__", *_WHERE]


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'feedback_pipeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
