"""Agreement and judge alignment on hand-built sessions, checked against krippendorff, scikit-learn and SciPy."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import krippendorff
import numpy as np
import polars as pl
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from feedback_pipeline import agreement, judge_alignment
from tests.quality_world import answer, frame, gold, schemas, table

NOW = datetime(2026, 12, 1, tzinfo=UTC)
CATEGORICAL = ("quality", "categorical", {"options": ["Good", "Okay", "Bad"]})


def figures(rows: list[dict], *specs: tuple[str, str, dict]) -> tuple[pl.DataFrame, pl.DataFrame]:
    label_schemas = schemas(*specs)
    ratings = agreement.session_ratings(frame(rows), "s", [s[0] for s in specs], label_schemas)
    return agreement.agreement(ratings, "s", NOW)


def metric(metrics: pl.DataFrame, question: str, name: str) -> dict:
    [row] = metrics.filter((pl.col("label_schema") == question) & (pl.col("metric") == name)).to_dicts()
    return row


def reliability(answers: dict[str, list], code=lambda v: v) -> list[list[float]]:
    return [[np.nan if v is None else code(v) for v in values] for values in answers.values()]


def expected_kappas(answers: dict[str, list], code, weights=None) -> dict[tuple[str, str], tuple[float, int]]:
    out = {}
    names = sorted(answers)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = [(x, y) for x, y in zip(answers[a], answers[b], strict=True) if x is not None and y is not None]
            out[(a, b)] = (cohen_kappa_score([code(x) for x, _ in shared], [code(y) for _, y in shared], weights=weights), len(shared))
    return out


def test_categorical_with_missing_answers_matches_krippendorff_and_sklearn():
    answers = {
        "alice": ["Good", "Bad", None, "Good", "Okay", "Good", "Bad"],
        "bob": ["Good", "Good", "Bad", "Good", "Okay", None, "Bad"],
        "carol": ["Bad", None, "Bad", "Good", "Good", "Good", "Bad"],
    }
    metrics, pairs = figures(table(answers, "quality"), CATEGORICAL)
    codes = {"Good": 0, "Okay": 1, "Bad": 2}
    alpha = metric(metrics, "quality", "krippendorff_alpha")
    assert alpha["value"] == pytest.approx(krippendorff.alpha(reliability(answers, codes.get), level_of_measurement="nominal"))
    assert (alpha["level"], alpha["items"], alpha["reviewers"], alpha["note"]) == ("nominal", 7, 3, None)
    # percent agreement: per item the share of agreeing reviewer pairs, averaged over the items
    per_item = [1 / 3, 0, 1, 1, 1 / 3, 1, 1]
    assert metric(metrics, "quality", "percent_agreement")["value"] == pytest.approx(np.mean(per_item))
    expected = expected_kappas(answers, codes.get)
    got = {(r["reviewer_a"], r["reviewer_b"]): (r["cohen_kappa"], r["items"]) for r in pairs.to_dicts()}
    assert got.keys() == expected.keys()
    for key, (kappa, items) in expected.items():
        assert got[key][0] == pytest.approx(kappa) and got[key][1] == items


def test_a_single_reviewer_gives_no_figure_and_no_crash():
    metrics, pairs = figures(table({"alice": ["Good", "Bad", "Okay"]}, "quality"), CATEGORICAL)
    assert metrics.height == 2 and pairs.height == 0
    for row in metrics.to_dicts():
        assert row["value"] is None and row["items"] == 0 and row["reviewers"] == 1
        assert row["note"] == agreement.NO_PAIRS
    assert "—" in agreement.markdown(metrics)


def test_all_identical_answers_leave_alpha_undefined_and_say_so():
    metrics, pairs = figures(table({"alice": ["Good", "Good"], "bob": ["Good", "Good"]}, "quality"), CATEGORICAL)
    alpha = metric(metrics, "quality", "krippendorff_alpha")
    assert alpha["value"] is None and alpha["note"] == agreement.NO_VARIATION
    assert metric(metrics, "quality", "percent_agreement")["value"] == 1.0
    [pair] = pairs.to_dicts()
    assert pair["cohen_kappa"] is None and pair["agreement"] == 1.0 and "undefined" in pair["note"]
    with pytest.raises(ValueError, match="more than one value"):
        krippendorff.alpha([[1, 1], [1, 1]], level_of_measurement="nominal")


def test_numeric_questions_use_the_interval_level_and_weighted_kappa():
    answers = {"alice": [1, 2, 3, 4, 5, None], "bob": [1, 3, 3, 4, 4, 2], "carol": [2, 2, None, 5, 5, 2]}
    metrics, pairs = figures(table(answers, "rating"), ("rating", "numeric", {"min_value": 1, "max_value": 5}))
    alpha = metric(metrics, "rating", "krippendorff_alpha")
    assert alpha["level"] == "interval"
    assert alpha["value"] == pytest.approx(krippendorff.alpha(reliability(answers, float), level_of_measurement="interval"))
    domain = {v: i for i, v in enumerate(sorted({v for values in answers.values() for v in values if v is not None}))}
    expected = expected_kappas(answers, domain.get, weights="quadratic")
    for row in pairs.to_dicts():
        kappa, items = expected[(row["reviewer_a"], row["reviewer_b"])]
        assert row["cohen_kappa"] == pytest.approx(kappa) and row["items"] == items


def test_categorical_lists_are_nominal_over_the_whole_selection():
    answers = {
        "alice": [["Hallucination", "Too long"], [], ["Off topic"], ["Hallucination"]],
        "bob": [["Too long", "Hallucination"], [], ["Off topic", "Too long"], ["Hallucination"]],
    }
    spec = ("issues", "categorical_list", {"options": ["Hallucination", "Off topic", "Too long"]})
    metrics, pairs = figures(table(answers, "issues"), spec)
    sets = {}
    code = lambda v: sets.setdefault(tuple(sorted(v)), len(sets))  # noqa: E731
    alpha = metric(metrics, "issues", "krippendorff_alpha")
    assert alpha["level"] == "nominal"
    assert alpha["value"] == pytest.approx(krippendorff.alpha(reliability(answers, code), level_of_measurement="nominal"))
    assert metric(metrics, "issues", "percent_agreement")["value"] == pytest.approx(0.75)  # the order of picks does not matter
    [pair] = pairs.to_dicts()
    assert pair["cohen_kappa"] == pytest.approx(expected_kappas(answers, code)[("alice", "bob")][0])


def test_text_questions_get_the_exact_match_rate():
    answers = {"alice": ["fine", "too long", "ok"], "bob": ["fine", "Too long", "ok"], "carol": ["fine", None, "meh"]}
    metrics, _ = figures(table(answers, "summary"), ("summary", "text", {"max_length": 40}))
    assert set(metrics.get_column("metric")) == {"exact_match", "percent_agreement"}
    assert metric(metrics, "summary", "exact_match")["value"] == pytest.approx(1 / 3)
    assert metric(metrics, "summary", "percent_agreement")["value"] == pytest.approx((1 + 0 + 1 / 3) / 3)


def test_adjudications_are_not_reviews_and_settle_disagreements():
    rows = table({"alice": ["Good", "Bad", "Okay"], "bob": ["Bad", "Bad", "Good"]}, "quality")
    rows.append(gold("judge@example.com", "tr-0", "quality", "Good", ["a-quality-tr-0-alice", "a-quality-tr-0-bob"]))
    label_schemas = schemas(CATEGORICAL)
    ratings = agreement.session_ratings(frame(rows), "s", ["quality"], label_schemas)
    assert "judge@example.com" not in ratings.get_column("assessor_id").to_list()
    adjudications = frame(rows).filter(pl.col("metadata").str.contains("adjudicates")).with_columns(
        agreement.adjudication.settles().alias("settles")
    )
    open_items = agreement.disagreements(ratings, adjudications)
    assert open_items.get_column("trace_id").to_list() == ["tr-2"]
    [answers] = open_items.get_column("answers").to_list()
    assert [(a["assessor_id"], json.loads(a["value"])) for a in answers] == [("alice", "Okay"), ("bob", "Good")]


def test_judge_alignment_on_known_judge_and_human_values():
    humans = {"alice": [True, True, False, False, True], "bob": [True, False, False, True, True], "carol": [True, False, False, False, None]}
    judge = [True, True, False, True, False]
    rows = table(humans, "correct", session=None)
    rows += [answer("gpt-judge", f"tr-{i}", "correct", v, session=None, source_type="LLM_JUDGE") for i, v in enumerate(judge)]
    rows.append(gold("lead@example.com", "tr-3", "correct", True, ["a-correct-tr-3-bob"]))  # overrides the majority (False)
    scores = {"tr-0": 4, "tr-1": 2, "tr-2": 5, "tr-3": 1, "tr-4": 3}
    rows += [answer("alice", t, "rating", v, session=None) for t, v in scores.items()]
    rows += [answer("length_scorer", t, "rating", v, session=None, source_type="CODE")
             for t, v in {"tr-0": 5, "tr-1": 2, "tr-2": 4, "tr-3": 1, "tr-4": 4}.items()]
    label_schemas = schemas(("correct", "pass_fail", {}), ("rating", "numeric", {"min_value": 1, "max_value": 5}))
    out = judge_alignment.judge_alignment(frame(rows).lazy(), label_schemas, NOW)
    [passfail] = out.filter(pl.col("name") == "correct").to_dicts()
    human = [True, False, False, True, True]  # majority per trace, tr-3 adjudicated
    assert (passfail["judge"], passfail["source_type"], passfail["traces"]) == ("gpt-judge", "LLM_JUDGE", 5)
    assert passfail["agreement"] == pytest.approx(np.mean(np.array(human) == np.array(judge)))
    assert passfail["cohen_kappa"] == pytest.approx(cohen_kappa_score(human, judge))
    matrix = json.loads(passfail["confusion_matrix"])
    assert matrix["labels"] == [False, True]
    assert matrix["matrix"] == confusion_matrix(human, judge, labels=[False, True]).tolist()
    assert passfail["disagreeing_trace_ids"] == ["tr-1", "tr-4"]
    assert passfail["mean_absolute_error"] is None

    [numeric] = out.filter(pl.col("name") == "rating").to_dicts()
    h, j = [4, 2, 5, 1, 3], [5, 2, 4, 1, 4]
    assert (numeric["judge"], numeric["input_type"], numeric["traces"]) == ("length_scorer", "numeric", 5)
    assert numeric["mean_absolute_error"] == pytest.approx(np.mean(np.abs(np.array(h) - np.array(j))))
    assert numeric["spearman"] == pytest.approx(spearmanr(h, j).statistic)
    assert numeric["agreement"] == pytest.approx(0.4)
    assert numeric["disagreeing_trace_ids"] == ["tr-0", "tr-2", "tr-4"]
    assert numeric["confusion_matrix"] is None
    assert "length_scorer" in judge_alignment.markdown(out)


def test_judge_names_without_human_values_give_no_rows():
    rows = [answer("gpt-judge", "tr-0", "tone", "friendly", session=None, source_type="LLM_JUDGE")]
    assert judge_alignment.judge_alignment(frame(rows).lazy(), schemas(), NOW).height == 0
    assert judge_alignment.judge_alignment(frame([]).lazy(), schemas(), NOW).height == 0
