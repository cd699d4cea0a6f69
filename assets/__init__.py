"""Dagster assets and asset checks, one module per stage of the flow. Thin: they call feedback_pipeline."""
