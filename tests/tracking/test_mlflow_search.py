"""MLflow's run search over Ferry's jobs: which runs a filter keeps, and in which order."""

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from jobs.models import Job, JobStatus
from tests.factories import ProjectFactory, UserFactory
from tests.fleet.factories import JobFactory
from tracking.mlflow_search import (
    RUN_STATUSES,
    SearchError,
    like_glob,
    run_status,
    runs_matching,
)
from tracking.models import DeletedRun, MetricSeries, Param, Tag

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms(moment: datetime | None) -> int:
    assert moment is not None
    return (moment - EPOCH) // timedelta(milliseconds=1)


class Runs:
    """Runs of one project, each started a minute after the one before unless told otherwise,
    and MLflow's search over them."""

    def __init__(self) -> None:
        self.project = ProjectFactory.create()
        self.count = 0

    def add(
        self,
        *,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        **fields: object,
    ) -> Job:
        self.count += 1
        fields.setdefault("started_at", T0 + timedelta(minutes=self.count))
        fields.setdefault("status", JobStatus.RUNNING)
        job: Job = JobFactory.create(project=self.project, **fields)
        for key, value in (metrics or {}).items():
            MetricSeries.objects.create(
                job=job, key=key, first_step=0, last_step=0, latest_value=value, latest_step=0,
                latest_at=T0,
            )  # fmt: skip
        Param.objects.bulk_create(Param(job=job, key=k, value=v) for k, v in (params or {}).items())
        Tag.objects.bulk_create(Tag(job=job, key=k, value=v) for k, v in (tags or {}).items())
        return job

    def ordered(
        self, filter_string: str = "", order_by: Sequence[str] = (), view: str = "ACTIVE_ONLY"
    ) -> list[Job]:
        jobs = Job.objects.filter(project=self.project)
        return list(runs_matching(jobs, filter_string, order_by, view))

    def matching(self, filter_string: str, view: str = "ACTIVE_ONLY") -> set[Job]:
        return set(self.ordered(filter_string, view=view))


@pytest.fixture
def runs() -> Runs:
    return Runs()


def pick(named: Mapping[str, Job], letters: Iterable[str]) -> set[Job]:
    return {named[letter] for letter in letters}


# --- statuses -----------------------------------------------------------------------------------


def test_every_job_status_has_exactly_one_run_status() -> None:
    mapped = [status for statuses in RUN_STATUSES.values() for status in statuses]

    assert sorted(mapped) == sorted(JobStatus.values)
    assert {status: run_status(status) for status in JobStatus.values} == {
        "queued": "SCHEDULED",
        "scheduled": "SCHEDULED",
        "starting": "RUNNING",
        "running": "RUNNING",
        "stopping": "RUNNING",
        "succeeded": "FINISHED",
        "failed": "FAILED",
        "lost": "FAILED",
        "stopped": "KILLED",
    }


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("attributes.status = 'RUNNING'", {"starting", "running"}),
        ("status != 'RUNNING'", {"queued", "succeeded", "failed", "lost", "stopped"}),
        ("run.status IN ('FAILED', 'KILLED')", {"failed", "lost", "stopped"}),
        ("status NOT IN ('RUNNING', 'SCHEDULED', 'FINISHED')", {"failed", "lost", "stopped"}),
        ("status LIKE 'F%'", {"succeeded", "failed", "lost"}),
        ("status LIKE 'f%'", set()),
        ("status ILIKE 'f%'", {"succeeded", "failed", "lost"}),
        ("status = 'running'", set()),
    ],
)
def test_status_compares_mlflow_statuses(
    runs: Runs, filter_string: str, expected: set[str]
) -> None:
    for status in ("queued", "starting", "running", "succeeded", "failed", "lost", "stopped"):
        runs.add(status=status)

    assert {job.status for job in runs.matching(filter_string)} == expected


# --- metrics, params, tags ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.acc > 0.5", "b"),
        ("metrics.acc >= 0.5", "ab"),
        ("metrics.acc < 0.9", "a"),
        ("metrics.acc <= 0.9", "ab"),
        ("metrics.acc = 0.5", "a"),
        ("metrics.acc != 0.5", "b"),  # m has no acc, so matches no comparison on it
        ("metric.acc > -1e3", "ab"),
        ("metrics.acc < .6", "a"),
        ("metrics.acc >= 1e400", ""),  # +Infinity
    ],
)
def test_metrics_compare_the_latest_value(runs: Runs, filter_string: str, expected: str) -> None:
    named = {
        "a": runs.add(metrics={"acc": 0.5}),
        "b": runs.add(metrics={"acc": 0.9, "loss": 0.1}),
        "m": runs.add(metrics={"loss": 0.2}),
    }

    assert runs.matching(filter_string) == pick(named, expected)


def test_a_nan_metric_satisfies_only_not_equal(runs: Runs, postgres: None) -> None:
    # SQLite stores no NaN; PostgreSQL orders it above +Infinity, which MLflow does not.
    number = runs.add(metrics={"acc": 0.5})
    nan = runs.add(metrics={"acc": math.nan})

    assert runs.matching("metrics.acc > 0") == {number}
    assert runs.matching("metrics.acc >= 0") == {number}
    assert runs.matching("metrics.acc < 1") == {number}
    assert runs.matching("metrics.acc != 0.5") == {nan}


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("params.lr = '0.01'", "a"),
        ('params.lr = "0.1"', "b"),
        ("params.lr != '0.01'", "b"),  # c has no lr, so matches no comparison on it
        ("param.lr LIKE '0.0%'", "a"),
        ("parameters.lr LIKE '0._'", "b"),
        ("params.lr IS NULL", "c"),
        ("params.lr is not null", "ab"),
        ("params.lr = '0.01' AND params.opt = 'adam'", "a"),
        ("params.lr = '0.01' and params.opt = 'sgd'", ""),
    ],
)
def test_params_compare_strings(runs: Runs, filter_string: str, expected: str) -> None:
    named = {
        "a": runs.add(params={"lr": "0.01", "opt": "adam"}),
        "b": runs.add(params={"lr": "0.1", "opt": "sgd"}),
        "c": runs.add(params={"opt": "adam"}),
    }

    assert runs.matching(filter_string) == pick(named, expected)


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("tags.model LIKE 'res%'", "b"),
        ("tags.model LIKE 'Res%'", "a"),
        ("tags.model ILIKE 'res%'", "ab"),
        ("tag.model ILIKE '%NET%'", "ab"),
        ("tags.model LIKE 'ResNet_50'", "a"),
        ("tags.model = 'resnet-18'", "b"),
        ("tags.model = 'RESNET-18'", ""),
        ("tags.model != 'resnet-18'", "acd"),
        ("tags.model LIKE 'a\\_b'", "c"),  # an escaped _ is itself, not a wildcard
        ("tags.model LIKE 'a_b'", "cd"),
    ],
)
def test_like_is_case_sensitive_and_ilike_is_not(
    runs: Runs, filter_string: str, expected: str
) -> None:
    named = {
        "a": runs.add(tags={"model": "ResNet-50"}),
        "b": runs.add(tags={"model": "resnet-18"}),
        "c": runs.add(tags={"model": "a_b"}),
        "d": runs.add(tags={"model": "axb"}),
    }

    assert runs.matching(filter_string) == pick(named, expected)


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.`val loss` < 1", "a"),
        ('metrics."val loss" < 1', "a"),
        ("params.`opt.lr` = '3'", "a"),
        ("params.opt.lr = '3'", "a"),
        ("tags.`my-tag` = 'x y'", "b"),
        ("tags.`my tag` IS NOT NULL", "b"),
        ("tags.`my-tag` = 'x y' AND metrics.`val loss` < 1", ""),
    ],
)
def test_keys_may_be_quoted_and_hold_spaces_dots_and_dashes(
    runs: Runs, filter_string: str, expected: str
) -> None:
    named = {
        "a": runs.add(metrics={"val loss": 0.5}, params={"opt.lr": "3"}),
        "b": runs.add(tags={"my-tag": "x y", "my tag": ""}),
    }

    assert runs.matching(filter_string) == pick(named, expected)


def test_an_empty_filter_keeps_every_run(runs: Runs) -> None:
    jobs = {runs.add(), runs.add()}

    assert runs.matching("") == jobs
    assert runs.matching("   ") == jobs


# --- attributes -----------------------------------------------------------------------------


def test_run_id_is_the_job_id_in_its_canonical_spelling(runs: Runs) -> None:
    a, b, c = runs.add(), runs.add(), runs.add()

    assert runs.matching(f"attributes.run_id = '{a.id}'") == {a}
    assert runs.matching(f"run_id != '{a.id}'") == {b, c}
    assert runs.matching(f"run_id IN ('{a.id}', \"{b.id}\", 'nonsense')") == {a, b}
    assert runs.matching(f"attr.run_id NOT IN ('{a.id}')") == {b, c}
    assert runs.matching(f"run_id = '0{a.id}'") == set()
    assert runs.matching("run_id = '99999999999999999999999'") == set()


def test_run_name_is_the_run_name_tag_or_else_the_job_number(runs: Runs) -> None:
    a = runs.add(tags={"mlflow.runName": "bright-fox"})
    b = runs.add(number=4207)

    assert runs.matching("attributes.run_name = 'bright-fox'") == {a}
    assert runs.matching("attributes.`Run name` = '4207'") == {b}
    assert runs.matching("run_name != 'bright-fox'") == {b}
    assert runs.matching("run_name LIKE 'bright%'") == {a}
    assert runs.matching("run_name LIKE 'BRIGHT%'") == set()
    assert runs.matching("run_name ILIKE 'BRIGHT%'") == {a}
    assert runs.matching("tags.mlflow.runName = 'bright-fox'") == {a}


def test_user_id_is_the_creator_username(runs: Runs) -> None:
    alice: User = UserFactory.create(username="alice")
    a = runs.add(created_by=alice)
    b = runs.add(created_by=UserFactory.create(username="bob"))
    runs.add(created_by=None)

    assert runs.matching("attributes.user_id = 'alice'") == {a}
    assert runs.matching("user_id != 'alice'") == {b}  # a run of nobody is no one's
    assert runs.matching("user_id LIKE '%o%'") == {b}


def test_start_time_compares_milliseconds_and_falls_back_to_creation(runs: Runs) -> None:
    a = runs.add(started_at=T0 + timedelta(microseconds=1500))  # 1.5 ms: at ms(T0) + 1
    b = runs.add(started_at=None, created_at=T0 + timedelta(seconds=10))
    c = runs.add(started_at=T0 + timedelta(seconds=20))
    at_a = ms(T0) + 1

    assert runs.matching(f"attributes.start_time = {at_a}") == {a}
    assert runs.matching(f"start_time != {at_a}") == {b, c}
    assert runs.matching(f"start_time > {at_a}") == {b, c}
    assert runs.matching(f"start_time >= {at_a}") == {a, b, c}
    assert runs.matching(f"start_time < {at_a}") == set()
    assert runs.matching(f"start_time <= {at_a}") == {a}
    assert runs.matching(f"start_time <= {at_a + 0.5}") == {a}
    assert runs.matching(f"start_time = {at_a + 0.5}") == set()
    assert runs.matching(f"created = {ms(T0) + 10_000}") == {b}
    assert runs.matching(f"created >= {ms(T0) + 10_000} AND start_time < {ms(c.started_at)}") == {b}


def test_end_time_matches_finished_runs_only(runs: Runs) -> None:
    a = runs.add(finished_at=T0 + timedelta(hours=1))
    b = runs.add(finished_at=T0 + timedelta(hours=2))
    runs.add(finished_at=None)

    assert runs.matching("attributes.end_time > 0") == {a, b}
    assert runs.matching(f"end_time != {ms(a.finished_at)}") == {b}
    assert runs.matching(f"end_time < {ms(b.finished_at)}") == {a}


# --- deleted runs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("view", "expected"),
    [("ACTIVE_ONLY", "k"), ("DELETED_ONLY", "d"), ("ALL", "kd"), ("all", "kd")],
)
def test_run_view_type_picks_deleted_runs(runs: Runs, view: str, expected: str) -> None:
    named = {"k": runs.add(), "d": runs.add()}
    DeletedRun.objects.create(job=named["d"], deleted_at=T0)

    assert runs.matching("", view=view) == pick(named, expected)


def test_an_unknown_run_view_type_is_refused(runs: Runs) -> None:
    with pytest.raises(SearchError, match="ACTIVE_ONLY, DELETED_ONLY, ALL"):
        runs.ordered(view="EVERYTHING")


# --- ordering -----------------------------------------------------------------------------------


def test_default_order_is_newest_start_first_then_job_id(runs: Runs) -> None:
    old = runs.add(started_at=T0)
    tie_first = runs.add(started_at=T0 + timedelta(hours=1))
    tie_second = runs.add(started_at=T0 + timedelta(hours=1))
    new = runs.add(started_at=T0 + timedelta(hours=2))

    assert runs.ordered() == [new, tie_first, tie_second, old]


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["metrics.acc"], "lhm"),
        (["metrics.acc ASC"], "lhm"),
        (["metrics.acc DESC"], "hlm"),  # missing last in either direction
        (["metric.acc desc"], "hlm"),
    ],
)
def test_metrics_order_with_missing_last(runs: Runs, order_by: list[str], expected: str) -> None:
    named = {
        "m": runs.add(),
        "h": runs.add(metrics={"acc": 0.9}),
        "l": runs.add(metrics={"acc": -0.5}),
    }

    assert runs.ordered(order_by=order_by) == [named[letter] for letter in expected]


def test_nan_metrics_order_after_numbers_and_before_missing(runs: Runs, postgres: None) -> None:
    missing = runs.add()
    nan = runs.add(metrics={"acc": math.nan})
    high = runs.add(metrics={"acc": 0.9})
    low = runs.add(metrics={"acc": -0.5})

    assert runs.ordered(order_by=["metrics.acc"]) == [low, high, nan, missing]
    assert runs.ordered(order_by=["metrics.acc DESC"]) == [high, low, nan, missing]


def test_params_and_tags_order_as_strings_with_missing_last(runs: Runs) -> None:
    a = runs.add(params={"opt": "adam"}, tags={"x y": "2"})
    b = runs.add(params={"opt": "sgd"}, tags={"x y": "1"})
    c = runs.add()

    assert runs.ordered(order_by=["params.opt"]) == [a, b, c]
    assert runs.ordered(order_by=["params.opt DESC"]) == [b, a, c]
    assert runs.ordered(order_by=["tags.`x y` desc"]) == [a, b, c]
    assert runs.ordered(order_by=["tags.`x y`"]) == [b, a, c]


def test_ties_fall_to_later_keys_then_newest_start_then_job_id(runs: Runs) -> None:
    a = runs.add(metrics={"acc": 0.5}, params={"opt": "sgd"}, started_at=T0)
    b = runs.add(metrics={"acc": 0.5}, params={"opt": "adam"}, started_at=T0)
    c = runs.add(metrics={"acc": 0.5}, params={"opt": "adam"}, started_at=T0)
    d = runs.add(metrics={"acc": 0.5}, params={"opt": "adam"}, started_at=T0 + timedelta(hours=1))

    assert runs.ordered(order_by=["metrics.acc", "params.opt"]) == [d, b, c, a]


def test_attributes_order_runs(runs: Runs) -> None:
    late = runs.add(started_at=T0 + timedelta(hours=1), status=JobStatus.FAILED)
    early = runs.add(started_at=T0, status=JobStatus.SUCCEEDED, tags={"mlflow.runName": "zz"})
    unstarted = runs.add(started_at=None, created_at=T0 - timedelta(hours=1))

    assert runs.ordered(order_by=["attributes.start_time ASC"]) == [unstarted, early, late]
    assert runs.ordered(order_by=["created DESC"]) == [late, early, unstarted]
    assert runs.ordered(order_by=["status"]) == [late, early, unstarted]  # FAILED < ... < RUNNING
    assert runs.ordered(order_by=["end_time"]) == [late, early, unstarted]  # all missing
    assert runs.ordered(order_by=["attributes.run_name DESC"])[0] == early


def test_a_search_is_one_query(runs: Runs) -> None:
    runs.add(metrics={"acc": 0.5}, params={"lr": "0.1"}, tags={"mlflow.runName": "x"})
    runs.add(metrics={"acc": 0.7})
    jobs = Job.objects.filter(project=runs.project)
    search = runs_matching(
        jobs, "metrics.acc > 0 AND run_name LIKE 'x%' AND status = 'RUNNING'", ["params.lr DESC"]
    )

    with CaptureQueriesContext(connection) as queries:
        found = list(search)

    assert len(found) == 1
    assert len(queries) == 1


# --- what the grammar refuses -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter_string", "message"),
    [
        ("metrics.a > 1 OR metrics.b < 2", "joined by AND only"),
        ("metrics.a > 1 AND (metrics.b < 2)", "expected a key"),
        ("metrics.a > 1 metrics.b < 2", "expected AND"),
        ("metrics.a > 1 AND", "found the end"),
        ("metrics.a LIKE '1'", "LIKE cannot compare metrics.a: use one of =, !="),
        ("metrics.a = '1'", "compares numbers, written without quotes"),
        ("metrics.a IS NULL", "IS NULL cannot compare metrics.a"),
        ("metrics.a == 1", "== cannot compare"),
        ("params.a = 1", "params.a compares strings"),
        ("params.a IN ('x')", "IN cannot compare params.a"),
        ("tags.a > 'x'", "> cannot compare tags.a"),
        ("params.a = 'unterminated", "single or double quotes"),
        ("params.a LIKE 'a\\'", "lone backslash"),
        ("tags.my-tag = 'x'", "backticks"),
        ("acc > 1", "Unknown attribute 'acc'.*metrics.acc"),
        ("attributes.artifact_uri = 'x'", "artifact_uri"),
        ("metricz.a > 1", "Unknown key type 'metricz'"),
        ("datasets.name = 'x'", "datasets"),
        ("metrics. > 1", "a key after 'metrics.'"),
        ("status IN ()", "lists hold strings"),
        ("status IN 'RUNNING'", "in parentheses"),
        ("run_id LIKE '1%'", "LIKE cannot compare attributes.run_id"),
        ("start_time > 'yesterday'", "attributes.start_time compares numbers"),
        ("start_time > 1e30", "out of range"),
        ("end_time < 1e400", "out of range"),
    ],
)
def test_a_bad_filter_is_refused_with_what_to_write(filter_string: str, message: str) -> None:
    with pytest.raises(SearchError, match=message):
        runs_matching(Job.objects.all(), filter_string, [])


@pytest.mark.parametrize(
    ("order_by", "message"),
    [
        (["metrics.a up"], "ASC or DESC"),
        (["metrics.a DESC nulls"], "nothing more"),
        (["metrics.a", "metric.a DESC"], "metrics.a more than once"),
        ([""], "expected a key"),
        (["nope"], "Unknown attribute 'nope'"),
        (["attributes.artifact_uri"], "artifact_uri"),
    ],
)
def test_a_bad_order_by_is_refused(order_by: list[str], message: str) -> None:
    with pytest.raises(SearchError, match=message):
        runs_matching(Job.objects.all(), "", order_by)


def test_glob_patterns_keep_globs_own_wildcards_literal() -> None:
    # SQLite's case-sensitive LIKE is a GLOB; the suite's PostgreSQL never runs this path.
    assert like_glob("50%_") == "50*?"
    assert like_glob("a*b?c[d]") == "a[*]b[?]c[[]d]"
    assert like_glob("100\\%\\_\\\\") == "100%_\\"
