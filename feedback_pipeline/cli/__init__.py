"""The `feedback-pipeline` command. Each group of subcommands lives in its own module here."""

from __future__ import annotations

import click



@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="feedback-pipeline")
def main() -> None:
    """Turn human feedback on LLM traces into versioned evaluation datasets."""




from feedback_pipeline.cli.review_app import api_keys, review_app, reviewers  # noqa: E402

main.add_command(review_app)
main.add_command(reviewers)
main.add_command(api_keys)
