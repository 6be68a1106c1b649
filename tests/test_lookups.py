"""``__any_of``: the rows whose key is in a list, with the list sent as one parameter."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.fleet.factories import JobFactory
from tracking.models import Tag

pytestmark = pytest.mark.django_db


def test_any_of_finds_the_rows_of_the_listed_keys_only() -> None:
    first, second, third = JobFactory.create_batch(3)
    for job in (first, second, third):
        Tag.objects.create(job=job, key="k", value=str(job.id))

    found = Tag.objects.filter(job__any_of=[first.id, third.id]).values_list("value", flat=True)

    assert sorted(found) == sorted([str(first.id), str(third.id)])


def test_any_of_an_empty_list_finds_nothing() -> None:
    Tag.objects.create(job=JobFactory.create(), key="k", value="v")

    assert not Tag.objects.filter(job__any_of=[]).exists()


def test_a_thousand_keys_make_one_parameter_on_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the array parameter is PostgreSQL's; elsewhere it is an IN list")
    with CaptureQueriesContext(connection) as captured:
        list(Tag.objects.filter(job__any_of=list(range(1000))))

    assert "= ANY(" in captured.captured_queries[0]["sql"]
    assert captured.captured_queries[0]["sql"].count("%s") == 0
