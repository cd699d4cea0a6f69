"""The `feedback-pipeline` command. Each group of subcommands lives in its own module here, imported
only when its command is called (the Review App's web stack costs a second `run` does not need)."""

from __future__ import annotations

import importlib
import warnings

import click

COMMANDS = {
    "traces": "traces:traces",
    "apply": "labeling:apply",
    "sessions": "labeling:sessions_group",
    "assessments": "assessments:assessments_group",
    "run": "pipeline:run",
    "status": "pipeline:status",
    "dagster-home": "pipeline:dagster_home",
    "demo": "demo:demo",
    "datasets": "datasets:datasets_group",
    "mlflow": "mlflow:mlflow_group",
    "quality": "quality:quality_group",
    "review-app": "review_app:review_app",
    "reviewers": "review_app:reviewers",
    "api-keys": "review_app:api_keys",
}


class LazyGroup(click.Group):
    """A group whose subcommands (COMMANDS: name -> "module:attribute") load on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        return getattr(importlib.import_module(f"feedback_pipeline.cli.{module}"), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="feedback-pipeline")
def main() -> None:
    """Turn human feedback on LLM traces into versioned evaluation datasets."""
    warnings.filterwarnings("ignore", message=r".* is currently in (beta|preview)")
