"""Site admins register, change and delete environments; everyone else reads them and runs jobs
in them. Every refused request says why and changes nothing."""

from typing import Any

import pytest
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from accounts.models import User
from jobs.environments import image_problem
from jobs.models import Environment
from projects.models import Project
from tests.conftest import client_for
from tests.factories import ProjectFactory, UserFactory
from tests.support.api_errors import assert_error

ENVIRONMENTS = "/api/v1/environments"
DIGEST = "sha256:" + "0123456789abcdef" * 4
JOBS = "/api/v1/projects/alice/mnist/jobs"


@pytest.fixture
def admin(db: None) -> User:
    return UserFactory.create(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def admin_api(admin: User) -> APIClient:
    return client_for(admin)


@pytest.fixture
def alice(db: None) -> User:
    return UserFactory.create(username="alice")


@pytest.fixture
def project(alice: User) -> Project:
    return ProjectFactory.create(name="mnist", owner_user=alice)


@pytest.fixture
def alice_api(alice: User) -> APIClient:
    return client_for(alice)


def register(api: APIClient, **body: Any) -> Any:
    return api.post(ENVIRONMENTS, {"name": "jax-0.4", "image": "acme/jax:0.4", **body}, "json")


def rows() -> list[tuple[str, str, str, str, bool]]:
    fields = ("name", "image", "gpu_image", "description", "is_default")
    return list(Environment.objects.order_by("name").values_list(*fields))


def default_names() -> list[str]:
    return list(Environment.objects.filter(is_default=True).values_list("name", flat=True))


# --- registering ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_admin_registers_an_image_and_a_job_runs_in_it(
    admin_api: APIClient, alice_api: APIClient, project: Project
) -> None:
    response = register(
        admin_api,
        gpu_image="registry.example.com:5000/acme/jax:0.4-cuda",
        description="JAX 0.4 and optax",
    )

    assert response.status_code == 201, response.json()
    assert response.json() == {
        "name": "jax-0.4",
        "description": "JAX 0.4 and optax",
        "image": "acme/jax:0.4",
        "gpu_image": "registry.example.com:5000/acme/jax:0.4-cuda",
        "is_default": False,
    }
    listed = [row["name"] for row in alice_api.get(ENVIRONMENTS).json()["results"]]
    assert "jax-0.4" in listed
    assert alice_api.get(f"{ENVIRONMENTS}/jax-0.4").json()["image"] == "acme/jax:0.4"
    job = alice_api.post(JOBS, {"command": "python train.py", "environment": "jax-0.4"}, "json")
    assert job.status_code == 202, job.json()
    assert job.json()["environment"] == "jax-0.4"
    # Nothing else moved: python-3.11 is still what a job naming no environment gets.
    assert default_names() == ["python-3.11"]


@pytest.mark.django_db
def test_a_new_default_takes_the_place_of_the_old_one(
    admin_api: APIClient, alice_api: APIClient, project: Project
) -> None:
    response = register(admin_api, default=True)

    assert response.status_code == 201, response.json()
    assert response.json()["is_default"] is True
    assert default_names() == ["jax-0.4"]
    job = alice_api.post(JOBS, {"command": "python train.py"}, "json")
    assert job.json()["environment"] == "jax-0.4"


@pytest.mark.django_db
def test_the_first_environment_is_the_default(admin_api: APIClient) -> None:
    Environment.objects.all().delete()

    response = register(admin_api)

    assert response.json()["is_default"] is True
    assert default_names() == ["jax-0.4"]


@pytest.mark.parametrize(
    "image",
    [
        "python",
        "ferry/python:3.11",
        "ferry/python:3.11-cuda",
        "localhost/train",
        "localhost:5000/team/train:v2",
        "Registry.Example.com/team/sub_dir/train-x__y.z:Tag_1.0",
        f"ferry/python@{DIGEST}",
        f"ghcr.io/acme/train:2024.1@{DIGEST}",
        "10.0.0.7:5000/train:latest",
    ],
)
def test_image_references_docker_accepts_are_accepted(image: str) -> None:
    assert image_problem(image) is None


BAD_IMAGES = [
    # image, a phrase the message must hold
    ("", "Give an image"),
    ("ferry/python 3.11", "no spaces"),
    (" ferry/python:3.11", "no spaces"),
    ("ferry/python:3.11\n", "no spaces"),
    ("Ferry/Python:3.11", "lowercase: write 'ferry', not 'Ferry'"),
    ("ferry/PyTorch", "lowercase"),
    ("ferry/python:", "The tag ''"),
    ("ferry/python:-rc1", "The tag '-rc1'"),
    ("ferry/python:a" + "b" * 128, "1-128"),
    ("ferry/python@sha256:abc", "64 lowercase hex"),
    (f"ferry/python@{DIGEST}@{DIGEST}", "64 lowercase hex"),
    (f"ferry/python@md5:{DIGEST[7:]}", "64 lowercase hex"),
    ("ferry//python", "'' is not a repository name"),
    ("ferry/python/", "'' is not a repository name"),
    (":3.11", "'' is not a repository name"),
    ("ferry/py$thon", "'py$thon' is not a repository name"),
    ("ferry/-python", "'-python' is not a repository name"),
    ("bad_host.example.com/train", "registry 'bad_host.example.com'"),
    ("example.com:port/train", "registry 'example.com:port'"),
    ("x" * 256, "at most 255"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "image", "phrase"),
    [("image", image, phrase) for image, phrase in BAD_IMAGES]
    # An empty gpu_image is allowed: the CPU image then serves GPU jobs too.
    + [("gpu_image", image, phrase) for image, phrase in BAD_IMAGES if image],
)
def test_a_bad_image_reference_is_refused_with_what_to_change(
    admin_api: APIClient, field: str, image: str, phrase: str
) -> None:
    before = rows()

    response = register(admin_api, **{field: image})

    if len(image) > 255:  # the serializer's length limit answers first
        error = assert_error(response, 400, "invalid")
        assert "255" in error["fields"][field][0]
    else:
        error = assert_error(response, 400, "invalid_image")
        assert phrase in error["message"], error
        assert list(error["fields"]) == [field]
    assert rows() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("", "letters, digits"),
        ("-jax", "letters, digits"),
        ("jax 0.4", "letters, digits"),
        ("jax/0.4", "letters, digits"),
        ("jax-", "letters, digits"),
    ],
)
def test_a_bad_name_is_refused(admin_api: APIClient, name: str, phrase: str) -> None:
    before = rows()

    error = assert_error(register(admin_api, name=name), 400, "invalid_name")

    assert phrase in error["message"]
    assert list(error["fields"]) == ["name"]
    assert rows() == before


@pytest.mark.django_db
def test_a_too_long_name_or_an_unknown_field_is_refused(admin_api: APIClient) -> None:
    before = rows()

    long_name = assert_error(register(admin_api, name="j" * 65), 400, "invalid")
    unknown = assert_error(register(admin_api, colour="blue"), 400, "invalid")
    missing = assert_error(admin_api.post(ENVIRONMENTS, {"name": "jax"}, "json"), 400, "invalid")
    not_text = assert_error(register(admin_api, image=3), 400, "invalid")

    assert list(long_name["fields"]) == ["name"]
    assert "Allowed fields" in unknown["fields"]["colour"][0]
    assert list(missing["fields"]) == ["image"]
    assert list(not_text["fields"]) == ["image"]
    assert rows() == before


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["python-3.11", "Python-3.11"])
def test_a_taken_name_is_a_conflict(admin_api: APIClient, name: str) -> None:
    before = rows()

    error = assert_error(register(admin_api, name=name), 409, "environment_exists")

    assert "python-3.11 exists already" in error["message"]
    assert rows() == before


# --- who may ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_site_admins_change_environments(alice_api: APIClient) -> None:
    staff = client_for(UserFactory.create(username="staff", is_staff=True))
    before = rows()

    for api in (alice_api, staff):
        answers = [
            register(api),
            api.patch(f"{ENVIRONMENTS}/python-3.11", {"image": "acme/x:1"}, "json"),
            api.delete(f"{ENVIRONMENTS}/tensorflow-2.16"),
        ]
        for response in answers:
            error = assert_error(response, 403, "permission_denied")
            assert "Only site admins may" in error["message"]
    anonymous = APIClient()
    assert_error(register(anonymous), 401, "not_authenticated")
    assert_error(anonymous.delete(f"{ENVIRONMENTS}/tensorflow-2.16"), 401, "not_authenticated")
    assert rows() == before


# --- changing ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_admin_changes_the_images_and_the_description(admin_api: APIClient) -> None:
    url = f"{ENVIRONMENTS}/pytorch-2.5"
    response = admin_api.patch(url, {"image": "acme/torch:2.5.1", "gpu_image": ""}, "json")

    assert response.status_code == 200, response.json()
    assert (response.json()["image"], response.json()["gpu_image"]) == ("acme/torch:2.5.1", "")
    response = admin_api.patch(url, {"description": "PyTorch 2.5.1, CPU only"}, "json")
    assert response.json()["image"] == "acme/torch:2.5.1"
    assert Environment.objects.get(name="pytorch-2.5").description == "PyTorch 2.5.1, CPU only"


@pytest.mark.django_db
def test_a_bad_change_changes_nothing(admin_api: APIClient) -> None:
    url = f"{ENVIRONMENTS}/pytorch-2.5"
    before = rows()

    bad_image = admin_api.patch(url, {"description": "new", "image": "Acme/Torch"}, "json")
    empty_image = admin_api.patch(url, {"image": ""}, "json")
    rename = admin_api.patch(url, {"name": "torch"}, "json")
    unknown = admin_api.patch(f"{ENVIRONMENTS}/no-such-env", {"image": "acme/x:1"}, "json")

    assert "lowercase" in assert_error(bad_image, 400, "invalid_image")["message"]
    assert "Give an image" in assert_error(empty_image, 400, "invalid_image")["message"]
    assert "Allowed fields" in assert_error(rename, 400, "invalid")["fields"]["name"][0]
    assert "python-3.11" in assert_error(unknown, 404, "not_found")["message"]
    assert rows() == before


@pytest.mark.django_db
def test_making_one_default_unsets_the_others(admin_api: APIClient) -> None:
    response = admin_api.patch(f"{ENVIRONMENTS}/pytorch-2.5", {"default": True}, "json")

    assert response.json()["is_default"] is True
    assert default_names() == ["pytorch-2.5"]
    again = admin_api.patch(f"{ENVIRONMENTS}/pytorch-2.5", {"default": True}, "json")
    assert again.status_code == 200
    assert default_names() == ["pytorch-2.5"]
    # Unsetting another's flag is no change at all.
    other = admin_api.patch(f"{ENVIRONMENTS}/python-3.11", {"default": False}, "json")
    assert other.json()["is_default"] is False
    assert default_names() == ["pytorch-2.5"]


@pytest.mark.django_db
def test_the_default_cannot_be_unset_only_moved(admin_api: APIClient) -> None:
    response = admin_api.patch(f"{ENVIRONMENTS}/python-3.11", {"default": False}, "json")

    error = assert_error(response, 400, "default_required")
    assert "Make another environment the default" in error["message"]
    assert default_names() == ["python-3.11"]


@pytest.mark.django_db
def test_the_database_holds_one_default_at_most() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Environment.objects.filter(name="pytorch-2.5").update(is_default=True)


# --- deleting ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_unused_environment_is_deleted(admin_api: APIClient) -> None:
    register(admin_api)

    response = admin_api.delete(f"{ENVIRONMENTS}/jax-0.4")

    assert response.status_code == 204
    assert not Environment.objects.filter(name="jax-0.4").exists()
    assert_error(admin_api.get(f"{ENVIRONMENTS}/jax-0.4"), 404, "not_found")


@pytest.mark.django_db
def test_an_environment_jobs_ran_in_is_kept(
    admin_api: APIClient, alice_api: APIClient, project: Project
) -> None:
    register(admin_api)
    alice_api.post(JOBS, {"command": "true", "environment": "jax-0.4"}, "json")

    error = assert_error(admin_api.delete(f"{ENVIRONMENTS}/jax-0.4"), 409, "environment_in_use")

    assert "1 job(s) ran in it" in error["message"]
    assert Environment.objects.filter(name="jax-0.4").exists()


@pytest.mark.django_db
def test_the_default_environment_is_not_deleted(admin_api: APIClient) -> None:
    error = assert_error(
        admin_api.delete(f"{ENVIRONMENTS}/python-3.11"), 409, "environment_is_default"
    )

    assert "make another one the default first" in error["message"]
    assert default_names() == ["python-3.11"]
