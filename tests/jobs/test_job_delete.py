"""Deleting a finished job (``jobs.services.job_delete``), as ``floyd delete`` does, and the job
numbers that are never given twice."""

import pytest

from accounts.models import User
from accounts.roles import Role
from blobs.services import tree_create
from core.errors import Conflict, PermissionDenied
from jobs.models import InputKind, Job, JobInput, JobStatus
from jobs.services import external_run_create, external_run_end, job_delete
from projects.models import Project
from tests.factories import ProjectFactory, ProjectMemberFactory, UserFactory
from tests.fleet.factories import JobFactory
from tests.support.concurrency import at_once

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice() -> User:
    user: User = UserFactory.create(username="alice")
    return user


@pytest.fixture
def project(alice: User) -> Project:
    created: Project = ProjectFactory.create(owner_user=alice)
    return created


def test_a_deleted_jobs_number_is_never_given_again(alice: User, project: Project) -> None:
    first = external_run_create(actor=alice, project=project)
    second = external_run_create(actor=alice, project=project)
    external_run_end(job=second, outcome=JobStatus.SUCCEEDED)

    job_delete(actor=alice, job=second)
    third = external_run_create(actor=alice, project=project)

    assert (first.number, second.number, third.number) == (1, 2, 3)
    assert not Job.objects.filter(id=second.id).exists()


def test_a_running_job_is_not_deleted(alice: User, project: Project) -> None:
    running = JobFactory.create(project=project, status=JobStatus.RUNNING)

    with pytest.raises(Conflict, match="stop it and delete it once it has ended"):
        job_delete(actor=alice, job=running)

    assert Job.objects.filter(id=running.id).exists()


def test_a_job_whose_output_another_mounts_is_kept(alice: User, project: Project) -> None:
    output = tree_create([], author_id=alice.id)
    done = JobFactory.create(project=project, status=JobStatus.SUCCEEDED, output_tree=output)
    reader = JobFactory.create(project=project, status=JobStatus.QUEUED)
    JobInput.objects.create(
        job=reader, name="prev", kind=InputKind.OUTPUT, source_job=done, tree=output
    )

    with pytest.raises(Conflict, match="other jobs mount its output"):
        job_delete(actor=alice, job=done)

    assert Job.objects.filter(id=done.id).exists()


def test_a_member_deletes_only_their_own_jobs(project: Project) -> None:
    member = UserFactory.create()
    ProjectMemberFactory.create(project=project, user=member, role=Role.MEMBER)
    theirs = JobFactory.create(project=project, status=JobStatus.FAILED, created_by=member)
    others = JobFactory.create(project=project, status=JobStatus.FAILED)

    job_delete(actor=member, job=theirs)
    with pytest.raises(PermissionDenied):
        job_delete(actor=member, job=others)

    assert not Job.objects.filter(id=theirs.id).exists()
    assert Job.objects.filter(id=others.id).exists()


@pytest.mark.django_db(transaction=True)
def test_jobs_made_at_once_get_numbers_one_after_another(alice: User, project: Project) -> None:
    JobFactory.create(project=project, number=5, status=JobStatus.SUCCEEDED)  # not numbered here

    outcomes = at_once(*[lambda: external_run_create(actor=alice, project=project)] * 4)

    assert outcomes == ["ok"] * 4
    numbers = sorted(Job.objects.filter(project=project).values_list("number", flat=True))
    assert numbers == [5, 6, 7, 8, 9]
