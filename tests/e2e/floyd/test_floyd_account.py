"""floyd-cli's login, version check and ``floyd init`` against Ferry."""

from pathlib import Path

from accounts.models import User
from projects.models import Project
from tests.e2e.floyd.conftest import Floyd
from tests.factories import ProjectFactory, UserFactory


def test_login_with_a_ferry_token_is_kept_in_the_floyd_config(
    floyd: Floyd, api_key: str, floyd_home: Path
) -> None:
    ran = floyd("login", "-k", api_key)

    assert ran.code == 0, ran
    assert "Login Successful as alice" in ran.text
    assert api_key in (floyd_home / ".floydconfig").read_text()


def test_login_with_an_unknown_key_is_refused(floyd: Floyd, alice: User) -> None:
    ran = floyd("login", "-k", "ferry_not-a-token")

    assert ran.code != 0
    assert "Invalid Token" in ran.text or "unknown" in ran.text
    assert "Login Successful" not in ran.text


def test_init_links_the_directory_to_a_project_it_creates(
    logged_in: Floyd, workdir: Path, alice: User
) -> None:
    ran = logged_in("init", "mnist")

    assert ran.code == 0, ran
    assert 'Project "mnist" initialized' in ran.text
    project = Project.objects.get(owner_user=alice, name="mnist")
    linked = (workdir / ".floydexpt").read_text()
    assert f'"family_id": "{project.id}"' in linked
    assert (workdir / ".floydignore").exists()
    assert (workdir / "floyd.yml").exists()


def test_init_of_an_existing_project_links_to_it(logged_in: Floyd, alice: User) -> None:
    project = ProjectFactory.create(owner_user=alice, name="mnist")

    ran = logged_in("init", "alice/mnist")

    assert ran.code == 0, ran
    assert Project.objects.filter(name="mnist").count() == 1
    assert project.name in ran.text


def test_init_in_someone_elses_namespace_creates_nothing(logged_in: Floyd) -> None:
    UserFactory.create(username="bob")

    ran = logged_in("init", "bob/secret", stdin="\n")

    assert ran.code != 0
    assert not Project.objects.filter(name="secret").exists()


def test_the_server_asks_for_no_newer_cli(logged_in: Floyd) -> None:
    ran = logged_in("version")

    assert ran.code == 0, ran
    assert "no longer compatible" not in ran.text
    assert "New version of CLI" not in ran.text
