"""The `feedback-pipeline` command. Each group of subcommands lives in its own module here."""

from __future__ import annotations

import click



@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="feedback-pipeline")
def main() -> None:
    """Turn human feedback on LLM traces into versioned evaluation datasets."""


from feedback_pipeline.cli.datasets import datasets_group  # noqa: E402

main.add_command(datasets_group)
