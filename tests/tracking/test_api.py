"""Ferry's tracking API for one job: recording and reading back metrics, params and tags, who
may do either (job tokens included), bad input, downsampled series, CSV, external runs."""

import csv
import io
import math
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.services import api_token_for_job
from jobs.models import Job, JobEvent, JobMode, JobStatus
from projects.models import Project
from tests.conftest import client_for
from tests.factories import ProjectMemberFactory, UserFactory
from tests.fleet.factories import JobFactory
from tracking.models import Metric, MetricSeries, Param, Tag
from tracking.parsing import MAX_STEP
from tracking.selectors import MAX_BUCKETS
from tracking.serializers import MAX_METRICS, MIN_STEP

pytestmark = pytest.mark.django_db


def running_job(project: Project, **fields: Any) -> Job:
    job: Job = JobFactory.create(
        project=project, created_by=project.owner_user, status=JobStatus.RUNNING, **fields
    )
    return job


@pytest.fixture
def job(project: Project) -> Job:
    return running_job(project)


def with_role(project: Project, role: Role) -> APIClient:
    member = ProjectMemberFactory.create(project=project, role=role).user
    return client_for(member)


def job_client(job: Job) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_for_job(job)}")
    return client


def url(job: Job, tail: str = "tracking") -> str:
    return f"/api/v1/projects/{job.project.full_name}/jobs/{job.number}/{tail}"


def get_series(client: APIClient, job: Job, **query: Any) -> Any:
    return client.get(url(job, "metrics/series"), query)


def stored(job: Job) -> tuple[int, int, int]:
    return (
        Metric.objects.filter(job=job).count(),
        Param.objects.filter(job=job).count(),
        Tag.objects.filter(job=job).count(),
    )


def points(job: Job, key: str) -> list[tuple[int, float]]:
    rows = Metric.objects.filter(job=job, key=key).order_by("step", "id")
    return list(rows.values_list("step", "value"))


# --- recording and reading back -----------------------------------------------------------------


def test_recorded_metrics_params_and_tags_read_back(client: APIClient, job: Job) -> None:
    body = {
        "metrics": [
            {"key": "loss", "value": 0.9, "step": 1, "timestamp": 1_700_000_000_000},
            {"key": "loss", "value": 0.4, "step": 2, "timestamp": 1_700_000_001_500},
            {"key": "acc", "value": 1, "step": 0},
        ],
        "params": {"lr": "0.01", "layers": "3"},
        "tags": {"stage": "dev"},
    }

    recorded = client.post(url(job), body, format="json")
    read = client.get(url(job))

    assert recorded.status_code == 200, recorded.json()
    assert recorded.json() == {"metrics": 3, "params": 2, "tags": 1}
    assert read.status_code == 200
    found = read.json()
    assert found["params"] == {"layers": "3", "lr": "0.01"}
    assert found["tags"] == {"stage": "dev"}
    acc, loss = found["metrics"]
    assert loss == {
        "key": "loss",
        "points": 2,
        "first_step": 1,
        "last_step": 2,
        "min": 0.4,
        "max": 0.9,
        "latest": {"value": 0.4, "step": 2, "timestamp": 1_700_000_001_500},
    }
    assert (acc["key"], acc["points"], acc["latest"]["value"]) == ("acc", 1, 1.0)


def test_a_point_s_timestamp_is_kept_to_the_millisecond(client: APIClient, job: Job) -> None:
    body = {"metrics": [{"key": "loss", "value": 1.0, "step": 0, "timestamp": 1_700_000_000_123}]}

    client.post(url(job), body, format="json")

    at = Metric.objects.get(job=job).timestamp
    assert at == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)


def test_a_point_without_a_time_is_stamped_now(client: APIClient, job: Job) -> None:
    before = datetime.now(UTC)

    client.post(url(job), {"metrics": [{"key": "loss", "value": 1.0}]}, format="json")

    assert before <= Metric.objects.get(job=job).timestamp <= datetime.now(UTC)


def test_points_without_a_step_follow_their_key(client: APIClient, job: Job) -> None:
    client.post(url(job), {"metrics": [{"key": "loss", "value": 3.0, "step": 10}]}, format="json")

    client.post(
        url(job),
        {"metrics": [{"key": "loss", "value": 2.0}, {"key": "loss", "value": 1.0, "step": None}]},
        format="json",
    )

    assert points(job, "loss") == [(10, 3.0), (11, 2.0), (12, 1.0)]


def test_non_finite_values_travel_as_strings_both_ways(client: APIClient, job: Job) -> None:
    body = {
        "metrics": [
            {"key": "loss", "value": "Infinity", "step": 0},
            {"key": "loss", "value": "-Infinity", "step": 1},
            {"key": "loss", "value": "NaN", "step": 2},
        ]
    }

    assert client.post(url(job), body, format="json").status_code == 200
    read = client.get(url(job))

    stored_values = [value for _, value in points(job, "loss")]
    assert stored_values[:2] == [math.inf, -math.inf]
    assert math.isnan(stored_values[2])
    (loss,) = read.json()["metrics"]
    assert (loss["min"], loss["max"], loss["latest"]["value"]) == ("-Infinity", "Infinity", "NaN")


def test_an_empty_body_records_nothing(client: APIClient, job: Job) -> None:
    answer = client.post(url(job), {}, format="json")

    assert answer.status_code == 200
    assert answer.json() == {"metrics": 0, "params": 0, "tags": 0}
    assert stored(job) == (0, 0, 0)


def test_the_extreme_steps_are_stored(client: APIClient, job: Job) -> None:
    body = {
        "metrics": [
            {"key": "loss", "value": 1.0, "step": MIN_STEP},
            {"key": "loss", "value": 2.0, "step": MAX_STEP},
        ]
    }

    answer = client.post(url(job), body, format="json")

    assert answer.status_code == 200, answer.json()
    assert points(job, "loss") == [(MIN_STEP, 1.0), (MAX_STEP, 2.0)]
    series = get_series(client, job, key="loss", buckets=1).json()
    assert sum(bucket["points"] for bucket in series["buckets"]) == 2


def test_no_step_comes_after_the_highest(client: APIClient, job: Job) -> None:
    client.post(url(job), {"metrics": [{"key": "a", "value": 1, "step": MAX_STEP}]}, format="json")

    answer = client.post(
        url(job), {"metrics": [GOOD, {"key": "a", "value": 2}], "tags": {"t": "1"}}, format="json"
    )

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "step_out_of_range"
    assert stored(job) == (1, 0, 0)


def test_ten_thousand_points_cost_the_statements_of_ten(client: APIClient, job: Job) -> None:
    def statements(count: int, offset: int) -> int:
        body = {
            "metrics": [
                {"key": f"m{i % 10}", "value": i * 0.5, "step": offset + i} for i in range(count)
            ]
        }
        with CaptureQueriesContext(connection) as queries:
            answer = client.post(url(job), body, format="json")
        assert answer.status_code == 200
        return len(queries)

    statements(10, 0)  # the token's last-used time is written once a minute: not in the counts

    assert statements(10, 100) == statements(MAX_METRICS, 1000)
    assert Metric.objects.filter(job=job).count() == 20 + MAX_METRICS


def test_a_full_request_is_recorded_quickly(client: APIClient, job: Job) -> None:
    """The hot path: a training loop's batch of the most points a request takes."""
    metrics: list[dict[str, Any]] = [
        {"key": f"m{i % 20}", "value": i / 7, "step": i // 20, "timestamp": 1_700_000_000_000}
        for i in range(MAX_METRICS)
    ]
    client.post(url(job), {"metrics": [{"key": "warm", "value": 1.0}]}, format="json")

    times = []
    for _ in range(3):
        for point in metrics:
            point["step"] += 1000
        started = time.perf_counter()
        answer = client.post(url(job), {"metrics": metrics}, format="json")
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200

    print(f"POST of {MAX_METRICS} metrics: best {min(times) * 1000:.0f} ms")
    assert min(times) < 5.0
    assert Metric.objects.filter(job=job).count() == 1 + 3 * MAX_METRICS


# --- who may record and read --------------------------------------------------------------------


def test_a_job_s_own_token_records_and_reads_its_job(job: Job) -> None:
    client = job_client(job)

    recorded = client.post(url(job), {"metrics": [{"key": "loss", "value": 1.0}]}, format="json")
    read = client.get(url(job))
    series = get_series(client, job, key="loss")

    assert recorded.status_code == 200
    assert read.status_code == 200
    assert series.status_code == 200
    assert stored(job) == (1, 0, 0)


def test_a_job_s_own_token_cannot_reach_another_job(project: Project, job: Job) -> None:
    other = running_job(project)
    client = job_client(job)

    recorded = client.post(url(other), {"metrics": [{"key": "loss", "value": 1}]}, format="json")
    read = client.get(url(other))

    assert recorded.status_code == 403
    assert recorded.json()["error"]["code"] == "job_token_elsewhere"
    assert read.status_code == 403
    assert stored(other) == (0, 0, 0)


def test_a_job_s_own_token_reaches_no_other_endpoint(project: Project, job: Job) -> None:
    client = job_client(job)

    listed = client.get(f"/api/v1/projects/{project.full_name}/jobs")
    compared = client.get(f"/api/v1/projects/{project.full_name}/compare", {"jobs": job.number})
    run = client.post(f"/api/v1/projects/{project.full_name}/runs", {}, format="json")

    assert [listed.status_code, compared.status_code, run.status_code] == [403, 403, 403]
    assert "only records that job's metrics" in listed.json()["error"]["message"]
    assert Job.objects.filter(project=project).count() == 1


def test_a_finished_job_s_token_is_refused(job: Job) -> None:
    client = job_client(job)
    Job.objects.filter(id=job.id).update(status=JobStatus.SUCCEEDED)

    answer = client.post(url(job), {"metrics": [{"key": "loss", "value": 1.0}]}, format="json")

    assert answer.status_code == 401
    assert stored(job) == (0, 0, 0)


@pytest.mark.parametrize(
    ("role", "may_record"), [(Role.VIEWER, False), (Role.MEMBER, True), (Role.ADMIN, True)]
)
def test_viewers_read_and_members_record(
    client: APIClient, project: Project, job: Job, role: Role, may_record: bool
) -> None:
    client.post(url(job), {"params": {"lr": "0.1"}}, format="json")
    someone = with_role(project, role)

    read = someone.get(url(job))
    recorded = someone.post(url(job), {"metrics": [{"key": "a", "value": 1}]}, format="json")

    assert read.status_code == 200
    assert read.json()["params"] == {"lr": "0.1"}
    assert recorded.status_code == (200 if may_record else 403)
    assert stored(job)[0] == (1 if may_record else 0)


def test_outsiders_see_nothing_of_a_private_project(job: Job) -> None:
    outsider = client_for(UserFactory.create())

    read = outsider.get(url(job))
    recorded = outsider.post(url(job), {"metrics": [{"key": "a", "value": 1}]}, format="json")
    anonymous = APIClient().post(url(job), {"metrics": [{"key": "a", "value": 1}]}, format="json")

    assert (read.status_code, recorded.status_code, anonymous.status_code) == (404, 404, 401)
    assert stored(job) == (0, 0, 0)


def test_an_unknown_job_is_named(client: APIClient, project: Project) -> None:
    answer = client.get(f"/api/v1/projects/{project.full_name}/jobs/99/tracking")

    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == "olga/mnist has no job 99."


# --- bad input ----------------------------------------------------------------------------------

GOOD = {"key": "loss", "value": 0.5, "step": 1}


def metric(**changes: object) -> dict[str, object]:
    return {"metrics": [GOOD, {**GOOD, **changes}]}


BAD_BODIES: list[tuple[str, object, str, str]] = [
    ("a list", [GOOD], "body", "Send a JSON object"),
    ("unknown field", {"metric": [GOOD]}, "metric", "Unknown field"),
    ("metrics not a list", {"metrics": GOOD}, "metrics", "Send a list of points"),
    ("point not an object", {"metrics": [GOOD, 0.5]}, "metrics.1", "as an object"),
    ("unknown point field", metric(epoch=3), "metrics.1.epoch", "Unknown field"),
    ("no key", {"metrics": [{"value": 1.0}]}, "metrics.0.key", "got null"),
    ("key a number", metric(key=3), "metrics.1.key", "as text; got 3"),
    ("value text", metric(value="0.5"), "metrics.1.value", "Give a number"),
    ("value lower-case nan", metric(value="nan"), "metrics.1.value", '"NaN"'),
    ("value true", metric(value=True), "metrics.1.value", "got true"),
    ("value null", metric(value=None), "metrics.1.value", "got null"),
    ("value a list", metric(value=[1.0]), "metrics.1.value", "got [1.0]"),
    ("value beyond float", metric(value=10**400), "metrics.1.value", "Give a number"),
    ("step a float", metric(step=1.5), "metrics.1.step", "whole number"),
    ("step true", metric(step=True), "metrics.1.step", "got true"),
    ("step beyond int64", metric(step=2**63), "metrics.1.step", str(MAX_STEP)),
    ("step below", metric(step=-(2**63)), "metrics.1.step", str(MIN_STEP)),
    ("timestamp a float", metric(timestamp=1.5e12), "metrics.1.timestamp", "milliseconds"),
    ("timestamp text", metric(timestamp="2024-01-01"), "metrics.1.timestamp", "milliseconds"),
    ("timestamp past 9999", metric(timestamp=10**16), "metrics.1.timestamp", "9999"),
    ("timestamp a list", metric(timestamp=[1]), "metrics.1.timestamp", "got [1]"),
    ("value an object", metric(value={"v": 1}), "metrics.1.value", "got {'v': 1}"),
    ("step a list", metric(step=[1]), "metrics.1.step", "got [1]"),
    ("params a list", {"params": ["lr"]}, "params", "Send an object"),
    ("param a number", {"params": {"lr": 0.1}}, "params.lr", '"0.1" rather than 0.1'),
    ("tag null", {"tags": {"stage": None}}, "tags.stage", "got null"),
    ("tag true", {"tags": {"stage": True}}, "tags.stage", "got true"),
]


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
def test_bad_input_is_refused_saying_what_to_change(
    client: APIClient, job: Job, body: object, field: str, says: str
) -> None:
    answer = client.post(url(job), body, format="json")

    assert answer.status_code == 400, answer.json()
    error = answer.json()["error"]
    assert list(error["fields"]) == [field]
    assert says in error["message"]
    assert stored(job) == (0, 0, 0)
    assert not MetricSeries.objects.filter(job=job).exists()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"metrics": [GOOD] * (MAX_METRICS + 1)}, "At most 10000 points a request (10001 sent)"),
        ({"params": {f"p{i}": "1" for i in range(1001)}}, "At most 1000 params a request"),
        ({"tags": {f"t{i}": "1" for i in range(1001)}}, "At most 1000 tags a request"),
    ],
    ids=["metrics", "params", "tags"],
)
def test_too_many_items_are_refused(client: APIClient, job: Job, body: object, says: str) -> None:
    answer = client.post(url(job), body, format="json")

    assert answer.status_code == 400
    assert says in answer.json()["error"]["message"]
    assert stored(job) == (0, 0, 0)


def test_the_most_items_a_request_takes_are_recorded(client: APIClient, job: Job) -> None:
    body = {
        "metrics": [{**GOOD, "step": i} for i in range(MAX_METRICS)],
        "params": {f"p{i}": "1" for i in range(1000)},
        "tags": {f"t{i}": "1" for i in range(1000)},
    }

    answer = client.post(url(job), body, format="json")

    assert answer.status_code == 200
    assert stored(job) == (MAX_METRICS, 1000, 1000)


def full_body(**changes: Any) -> dict[str, Any]:
    return {"params": {"lr": "0.1"}, "tags": {"ok": "yes"}, "metrics": [GOOD], **changes}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (full_body(tags={"ok": "yes", "stage": "x" * 8001}), "tag_value_too_long"),
        (full_body(metrics=[GOOD, {**GOOD, "key": "k" * 251}]), "invalid_metric_key"),
        (full_body(params={"lr": "0.1", "p" * 251: "1"}), "invalid_param_key"),
        (full_body(params={"lr": "0.1", "notes": "x" * 6001}), "param_value_too_long"),
    ],
    ids=["tag value too long", "metric key too long", "param key too long", "param too long"],
)
def test_a_refusal_after_some_writes_leaves_nothing_behind(
    client: APIClient, job: Job, body: dict[str, Any], code: str
) -> None:
    # Params are recorded first, then tags, then metrics: a refused tag or metric comes after
    # the params were written.
    answer = client.post(url(job), body, format="json")

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == code
    assert stored(job) == (0, 0, 0)


def test_a_changed_param_refuses_the_whole_request(client: APIClient, job: Job) -> None:
    client.post(url(job), {"params": {"lr": "0.1"}}, format="json")

    answer = client.post(
        url(job),
        {"params": {"lr": "0.2", "batch": "64"}, "metrics": [GOOD], "tags": {"a": "b"}},
        format="json",
    )

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "param_changed"
    assert "Param 'lr' is already logged with value '0.1'" in error["message"]
    assert stored(job) == (0, 1, 0)
    assert Param.objects.get(job=job).value == "0.1"


def test_nan_is_not_json(client: APIClient, job: Job) -> None:
    body = b'{"metrics": [{"key": "loss", "value": NaN}]}'

    answer = client.post(url(job), body, content_type="application/json")

    assert answer.status_code == 400
    assert stored(job) == (0, 0, 0)


# --- series -------------------------------------------------------------------------------------


def record(
    client: APIClient, job: Job, key: str, values: list[float | str], first: int = 0
) -> None:
    body = {"metrics": [{"key": key, "value": v, "step": first + i} for i, v in enumerate(values)]}
    assert client.post(url(job), body, format="json").status_code == 200


def test_a_long_series_is_read_downsampled(client: APIClient, job: Job) -> None:
    record(client, job, "loss", [float(i) for i in range(10_000)])

    answer = get_series(client, job, key="loss", buckets=100)

    assert answer.status_code == 200
    series = answer.json()
    assert (series["key"], series["points"]) == ("loss", 10_000)
    buckets = series["buckets"]
    assert series["width"] > 1
    assert len(buckets) == math.ceil(10_000 / series["width"]) <= 100
    assert sum(bucket["points"] for bucket in buckets) == 10_000
    first = buckets[0]
    last_step = first["last_step"]
    assert first == {
        "first_step": 0,
        "last_step": last_step,
        "points": last_step + 1,
        "min": 0.0,
        "max": float(last_step),
        "mean": last_step / 2,
        "last": float(last_step),
    }
    assert buckets[-1]["last_step"] == 9999


def test_a_short_series_comes_as_its_points(client: APIClient, job: Job) -> None:
    record(client, job, "acc", [0.1, "NaN", 0.3])
    client.post(url(job), {"metrics": [{"key": "acc", "value": "NaN", "step": 3}]}, format="json")

    answer = get_series(client, job, key="acc", first_step="", last_step="")

    series = answer.json()
    assert series["width"] == 1
    assert [(b["first_step"], b["last"], b["mean"]) for b in series["buckets"]] == [
        (0, 0.1, 0.1), (1, "NaN", None), (2, 0.3, 0.3), (3, "NaN", None),
    ]  # fmt: skip


def test_a_range_of_steps_is_read(client: APIClient, job: Job) -> None:
    record(client, job, "loss", [float(i) for i in range(100)])

    answer = get_series(client, job, key="loss", first_step=10, last_step=14)

    assert [b["first_step"] for b in answer.json()["buckets"]] == [10, 11, 12, 13, 14]


def test_an_unknown_metric_is_a_clear_404(client: APIClient, job: Job) -> None:
    record(client, job, "loss", [1.0])

    answer = get_series(client, job, key="accuracy")

    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["code"] == "unknown_metric"
    assert "has no metric 'accuracy'" in error["message"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"key": "loss", "buckets": 0}, "buckets"),
        ({"key": "loss", "buckets": MAX_BUCKETS + 1}, "buckets"),
        ({"key": "loss", "buckets": "many"}, "buckets"),
        ({"key": "loss", "first_step": "one"}, "first_step"),
        ({}, "key"),
    ],
)
def test_a_bad_series_query_is_refused(
    client: APIClient, job: Job, query: dict[str, Any], field: str
) -> None:
    record(client, job, "loss", [1.0])

    answer = get_series(client, job, **query)

    assert answer.status_code == 400
    assert list(answer.json()["error"]["fields"]) == [field]


def test_the_most_buckets_are_allowed(client: APIClient, job: Job) -> None:
    record(client, job, "loss", [1.0, 2.0])

    answer = get_series(client, job, key="loss", buckets=MAX_BUCKETS)

    assert answer.status_code == 200
    assert len(answer.json()["buckets"]) == 2


# --- CSV ----------------------------------------------------------------------------------------


def csv_of(answer: Any) -> str:
    return b"".join(answer.streaming_content).decode()


def test_metrics_download_as_csv(client: APIClient, job: Job) -> None:
    body = {
        "metrics": [
            {"key": "loss", "value": 0.5, "step": 2, "timestamp": 1_700_000_000_000},
            {"key": "loss", "value": "NaN", "step": 1, "timestamp": 1_700_000_000_250},
            {"key": "acc, top-1", "value": 1, "step": 0, "timestamp": 1_700_000_001_000},
        ]
    }
    client.post(url(job), body, format="json")

    answer = client.get(url(job, "metrics.csv"))

    assert answer.status_code == 200
    assert answer.streaming
    assert answer["Content-Type"] == "text/csv; charset=utf-8"
    assert answer["Content-Disposition"] == (
        f'attachment; filename="olga-mnist-{job.number}-metrics.csv"'
    )
    assert csv_of(answer) == (
        "key,step,value,timestamp\n"
        '"acc, top-1",0,1.0,2023-11-14T22:13:21.000Z\n'
        "loss,1,NaN,2023-11-14T22:13:20.250Z\n"
        "loss,2,0.5,2023-11-14T22:13:20.000Z\n"
    )


def test_the_csv_of_one_key(client: APIClient, job: Job) -> None:
    record(client, job, "loss", [0.5] * 2500)
    record(client, job, "acc", [0.1])

    answer = client.get(url(job, "metrics.csv"), {"key": "loss"})

    rows = list(csv.reader(io.StringIO(csv_of(answer))))
    assert rows[0] == ["key", "step", "value", "timestamp"]
    assert len(rows) == 2501
    assert {row[0] for row in rows[1:]} == {"loss"}
    assert [int(row[1]) for row in rows[1:]] == list(range(2500))


def test_viewers_download_and_outsiders_do_not(
    client: APIClient, project: Project, job: Job
) -> None:
    record(client, job, "loss", [0.5])

    viewer = with_role(project, Role.VIEWER).get(url(job, "metrics.csv"))
    outsider = client_for(UserFactory.create()).get(url(job, "metrics.csv"))

    assert viewer.status_code == 200
    assert csv_of(viewer).count("\n") == 2
    assert outsider.status_code == 404


# --- external runs ------------------------------------------------------------------------------


def runs_url(project: Project) -> str:
    return f"/api/v1/projects/{project.full_name}/runs"


def test_an_external_run_is_created_running(client: APIClient, project: Project) -> None:
    answer = client.post(
        runs_url(project),
        {"name": "laptop sweep", "params": {"lr": "0.1"}, "tags": {"host": "laptop"}},
        format="json",
    )

    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["mode"], body["status"], body["message"]) == (
        "external",
        "running",
        "laptop sweep",
    )
    assert body["name"] == f"olga/mnist/{body['number']}"
    run = Job.objects.get(project=project, number=body["number"])
    assert run.mode == JobMode.EXTERNAL
    assert dict(Param.objects.filter(job=run).values_list("key", "value")) == {"lr": "0.1"}
    assert dict(Tag.objects.filter(job=run).values_list("key", "value")) == {"host": "laptop"}


def test_an_external_run_s_params_are_kept_as_sent(client: APIClient, project: Project) -> None:
    answer = client.post(
        runs_url(project), {"params": {"note": "", "pad": " x "}, "tags": {"t": ""}}, format="json"
    )

    run = Job.objects.get(project=project, number=answer.json()["number"])
    assert entries_of(run) == ({"note": "", "pad": " x "}, {"t": ""})


def entries_of(job: Job) -> tuple[dict[str, str], dict[str, str]]:
    params = dict(Param.objects.filter(job=job).values_list("key", "value"))
    return params, dict(Tag.objects.filter(job=job).values_list("key", "value"))


def test_an_external_run_s_bad_params_create_nothing(client: APIClient, project: Project) -> None:
    answer = client.post(runs_url(project), {"params": {"lr": 0.1}}, format="json")
    too_long = client.post(runs_url(project), {"params": {"x": "y" * 6001}}, format="json")

    assert answer.status_code == 400
    assert list(answer.json()["error"]["fields"]) == ["params.lr"]
    assert too_long.status_code == 400
    assert not Job.objects.filter(project=project).exists()


def test_viewers_cannot_start_runs(project: Project) -> None:
    answer = with_role(project, Role.VIEWER).post(runs_url(project), {}, format="json")

    assert answer.status_code == 403
    assert not Job.objects.filter(project=project).exists()


@pytest.mark.parametrize("outcome", ["succeeded", "failed", "stopped"])
def test_an_external_run_ends_as_its_client_says(
    client: APIClient, project: Project, outcome: str
) -> None:
    number = client.post(runs_url(project), {}, format="json").json()["number"]
    run = Job.objects.get(project=project, number=number)

    answer = client.post(url(run, "end"), {"status": outcome}, format="json")

    assert answer.status_code == 200, answer.json()
    assert answer.json()["status"] == outcome
    run.refresh_from_db()
    assert run.status == outcome
    assert JobEvent.objects.filter(job=run, to_status=outcome).exists()


def test_a_job_ferry_runs_cannot_be_ended_as_a_run(client: APIClient, job: Job) -> None:
    answer = client.post(url(job, "end"), {"status": "succeeded"}, format="json")

    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "not_external"
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING


def test_a_run_ends_only_as_succeeded_failed_or_stopped(
    client: APIClient, project: Project
) -> None:
    number = client.post(runs_url(project), {}, format="json").json()["number"]
    run = Job.objects.get(project=project, number=number)

    answer = client.post(url(run, "end"), {"status": "lost"}, format="json")

    assert answer.status_code == 400
    assert list(answer.json()["error"]["fields"]) == ["status"]
    run.refresh_from_db()
    assert run.status == JobStatus.RUNNING


def test_viewers_cannot_end_runs(client: APIClient, project: Project) -> None:
    number = client.post(runs_url(project), {}, format="json").json()["number"]
    run = Job.objects.get(project=project, number=number)

    answer = with_role(project, Role.VIEWER).post(
        url(run, "end"), {"status": "failed"}, format="json"
    )

    assert answer.status_code == 403
    run.refresh_from_db()
    assert run.status == JobStatus.RUNNING
