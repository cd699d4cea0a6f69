"""Assessments: collect submissions from the landing zone, validate them into assessments, check them.

Both assets are partitioned by submission date (the UTC day a submission arrived). A sensor run
carries its landing-key range in run tags; a backfill over dates (one run for the whole range)
re-collects those days' landing files and re-derives their assessments from `submissions`.
"""


import dagster as dg
import polars as pl

from feedback_pipeline_dagster.assets.metadata import records_table
from feedback_pipeline_dagster.assets.resources import LakeResource, LandingResource
from feedback_pipeline import assessments as core
from feedback_pipeline.submission_collection import collect_submissions
from feedback_pipeline.submission_runs import Scope
from feedback_pipeline.validation import latest_schemas

SUBMISSION_DAYS = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_offset=1)
TAG_AFTER = "feedback/landing_after"
TAG_LAST = "feedback/landing_last"
JOB_NAME = "assessments_job"
POOL = "feedback_assessments"


def tagged_scope(tags: dict[str, str]) -> Scope | None:
    """The landing-key range a sensor run carries in its tags, or None for other runs."""
    if tags.get(TAG_LAST):
        return Scope(after_key=tags.get(TAG_AFTER) or None, last_key=tags[TAG_LAST])
    return None


def run_scope(context: dg.AssetExecutionContext) -> Scope:
    """The landing-key range from the run's tags (sensor runs), else the partition date range."""
    scope = tagged_scope(context.run.tags)
    if scope is not None:
        return scope
    window = context.partition_time_window
    return Scope.dates(window.start.date(), window.end.date())


def _metadata(report: dict) -> dict:
    return {key: value for key, value in report.items() if value is not None}


@dg.asset(
    partitions_def=SUBMISSION_DAYS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="assessments",
    kinds={"delta", "polars"},
    pool=POOL,
    description="Every received submission once (merged on submission_id), with its landing key and line.",
)
def submissions(context: dg.AssetExecutionContext, lake: LakeResource, landing: LandingResource) -> dg.MaterializeResult:
    scope = run_scope(context)
    report = collect_submissions(lake.lake(), landing.landing(), scope)
    context.log.info(f"{scope.describe()}: {report['received']} lines, {report['new']} new, {report['duplicates']} duplicates")
    return dg.MaterializeResult(metadata=_metadata({"scope": scope.describe(), **report}))


@dg.asset(
    partitions_def=SUBMISSION_DAYS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[submissions],
    group_name="assessments",
    kinds={"delta", "polars"},
    pool=POOL,
    description="Current assessments (valid = not overridden or superseded), their history and the rejections.",
)
def assessments(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    report = core.derive_assessments(lake.lake(), run_scope(context), run_id=context.run_id)
    context.log.info(
        f"{report['scope']}: received {report['received']} = accepted {report['accepted']} + rejected "
        f"{report['rejected']} + duplicates {report['duplicates']}: {'ok' if report['accounted'] else 'MISMATCH'}"
    )
    return dg.MaterializeResult(metadata=_metadata(report))


@dg.asset_check(
    asset=assessments,
    description="Great Expectations suites derived from the label schemas, on the assessments the run changed "
    "(on the whole table when executed outside a sensor run). Warns only: a failure means stored answers no "
    "longer fit a changed schema; backfill their dates to re-validate them.",
)
def assessments_match_label_schemas(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
    from feedback_pipeline.suites import check_assessments

    store = lake.lake()
    schemas = latest_schemas(store.read("label_schemas") if store.exists("label_schemas") else pl.DataFrame())
    outcome = check_assessments(core.assessments_touched(store, tagged_scope(context.run.tags)), schemas)
    return dg.AssetCheckResult(
        passed=outcome.success,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rows_evaluated": outcome.evaluated,
            "expectations": len(outcome.results),
            "failed_expectations": len(outcome.failures),
            "failures": records_table(outcome.failures[:20]),
        },
    )


@dg.asset_check(
    asset=assessments,
    blocking=True,
    description="Every recorded submission the run collected (all of them outside a sensor or `feedback-pipeline run` "
    "run) is in exactly one of assessment_history and rejections. Blocking: a failure stops the dataset builds "
    "that depend on it. If it fails, re-run the run's dates (backfill) and read `in_both` / `in_neither`.",
)
def every_submission_accounted_for(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
    counts = core.accounting(lake.lake(), tagged_scope(context.run.tags))
    return dg.AssetCheckResult(passed=counts["in_both"] == 0 and counts["in_neither"] == 0, metadata=counts)


assessments_job = dg.define_asset_job(
    JOB_NAME,
    selection=dg.AssetSelection.assets(submissions, assessments),
    partitions_def=SUBMISSION_DAYS,
    description="Collect a batch of submission files and derive their assessments.",
)
