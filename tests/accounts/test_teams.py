"""The teams API: creating teams, the namespace they share with users, and managing members.

The cast, as in every permission test: a team `acme` founded by `founder` (an owner), an actor
who holds one role in it (or none: `outsider`; or is not logged in: `anonymous`), and a `target`
member whose role the actor tries to change. The founder stays an owner throughout, so "the last
owner" never gets in the way of a rule that is about roles.
"""

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Membership, Team, User
from accounts.roles import Role
from accounts.services import team_member_change_role, team_member_remove
from projects.models import Project, Visibility
from tests.factories import MembershipFactory, ProjectFactory, TeamFactory, UserFactory
from tests.support.concurrency import at_once

pytestmark = pytest.mark.django_db

AsUser = Callable[[User | None], APIClient]

OK, NEW, GONE = 200, 201, 204
AUTH, DENY = 401, 403
ERROR_CODE = {AUTH: "not_authenticated", DENY: "permission_denied"}


@pytest.fixture
def acme(db: None) -> Team:
    team = TeamFactory.create(name="acme")
    MembershipFactory.create(
        team=team, user=UserFactory.create(username="founder"), role=Role.OWNER
    )
    return team


def join(team: Team, username: str, role: str) -> User:
    return MembershipFactory.create(
        team=team, user=UserFactory.create(username=username), role=role
    ).user


def actor_in(team: Team, actor: str) -> User | None:
    """`owner`, `admin`, `member` or `viewer` of ``team``; or an `outsider`; or `anonymous`."""
    if actor == "anonymous":
        return None
    if actor == "outsider":
        return UserFactory.create(username="outsider")
    return join(team, f"the_{actor}", actor)


def role_in(team: Team, username: str) -> str | None:
    membership = Membership.objects.filter(team=team, user__username=username).first()
    return membership.role if membership else None


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"]["code"] == code, body
    assert set(body["error"]) == {"code", "message", "fields"}


def assert_answer(response: Any, expected: int) -> None:
    if expected < 400:
        assert response.status_code == expected, response.content
    else:
        assert_error(response, expected, ERROR_CODE[expected])


# --- creating teams and the shared namespace ----------------------------------------------------


def test_creating_a_team_makes_the_creator_its_only_owner(
    alice: User, alice_client: APIClient
) -> None:
    response = alice_client.post(
        "/api/v1/teams", {"name": "acme", "display_name": "Acme Labs"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["name"] == "acme"
    assert response.json()["display_name"] == "Acme Labs"
    team = Team.objects.get(name="acme")
    assert list(team.memberships.values_list("user__username", "role")) == [("alice", "owner")]


def test_anonymous_cannot_create_a_team(as_user: AsUser) -> None:
    response = as_user(None).post("/api/v1/teams", {"name": "acme"}, format="json")

    assert_error(response, AUTH, "not_authenticated")
    assert not Team.objects.exists()


@pytest.mark.parametrize("name", ["bob", "BOB", "Bob"])
def test_team_name_taken_by_a_user_is_refused_in_any_case(
    alice_client: APIClient, name: str
) -> None:
    UserFactory.create(username="bob")

    response = alice_client.post("/api/v1/teams", {"name": name}, format="json")

    assert_error(response, 400, "name_taken")
    assert response.json()["error"]["fields"] == {"name": ["This name is taken."]}
    assert not Team.objects.exists()


@pytest.mark.parametrize("name", ["acme", "ACME", "aCmE"])
def test_team_names_are_unique_ignoring_case(
    alice_client: APIClient, acme: Team, name: str
) -> None:
    response = alice_client.post("/api/v1/teams", {"name": name}, format="json")

    assert_error(response, 400, "name_taken")
    assert Team.objects.count() == 1


def test_team_may_not_take_its_creators_own_username(alice_client: APIClient) -> None:
    response = alice_client.post("/api/v1/teams", {"name": "Alice"}, format="json")

    assert_error(response, 400, "name_taken")
    assert not Team.objects.exists()


def test_signup_may_not_take_a_team_name(acme: Team, api_client: APIClient, settings: Any) -> None:
    settings.FERRY_SIGNUP_ENABLED = True

    response = api_client.post(
        "/api/v1/auth/signup",
        {"username": "ACME", "email": "a@example.com", "password": "a long unusual passphrase"},
        format="json",
    )

    assert_error(response, 400, "name_taken")
    assert response.json()["error"]["fields"] == {"username": ["This name is taken."]}
    assert not User.objects.filter(username__iexact="acme").exists()


def test_reserved_name_is_refused_as_a_team_name(alice_client: APIClient) -> None:
    response = alice_client.post("/api/v1/teams", {"name": "admin"}, format="json")

    assert_error(response, 400, "invalid")
    assert "name" in response.json()["error"]["fields"]
    assert not Team.objects.exists()


# --- reading teams ------------------------------------------------------------------------------


def test_list_of_my_teams_has_exactly_the_teams_i_belong_to(
    alice: User, alice_client: APIClient
) -> None:
    for name, role in [("zeta", Role.VIEWER), ("acme", Role.OWNER)]:
        MembershipFactory.create(team=TeamFactory.create(name=name), user=alice, role=role)
    MembershipFactory.create(team=TeamFactory.create(name="other"), role=Role.OWNER)

    response = alice_client.get("/api/v1/teams")

    assert response.status_code == 200, response.content
    assert [t["name"] for t in response.json()["results"]] == ["acme", "zeta"]
    assert response.json()["count"] == 2


def test_anonymous_has_no_list_of_teams(as_user: AsUser) -> None:
    assert_error(as_user(None).get("/api/v1/teams"), AUTH, "not_authenticated")


@pytest.mark.parametrize("actor", ["viewer", "outsider", "anonymous"])
def test_team_detail_is_visible_to_anyone(as_user: AsUser, acme: Team, actor: str) -> None:
    response = as_user(actor_in(acme, actor)).get("/api/v1/teams/ACME")

    assert response.status_code == 200, response.content
    assert response.json()["name"] == "acme"


def test_missing_team_answers_404(as_user: AsUser, db: None) -> None:
    assert_error(as_user(None).get("/api/v1/teams/nope"), 404, "not_found")


# Teams are public by profile (the detail above), so refusing outsiders the member list with 403
# hides nothing that a 404 would: the team's existence is no secret.
@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        ("owner", OK),
        ("admin", OK),
        ("member", OK),
        ("viewer", OK),
        ("outsider", DENY),
        ("anonymous", AUTH),
    ],
)
def test_member_list_is_for_members_only(
    as_user: AsUser, acme: Team, actor: str, expected: int
) -> None:
    response = as_user(actor_in(acme, actor)).get("/api/v1/teams/acme/members")

    assert_answer(response, expected)
    if expected == OK:
        members = {(m["username"], m["role"]) for m in response.json()["results"]}
        assert ("founder", "owner") in members
        assert len(members) == acme.memberships.count()


# --- changing the team's settings, deleting it --------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        ("owner", OK),
        ("admin", OK),
        ("member", DENY),
        ("viewer", DENY),
        ("outsider", DENY),
        ("anonymous", AUTH),
    ],
)
def test_team_settings_need_admin(as_user: AsUser, acme: Team, actor: str, expected: int) -> None:
    response = as_user(actor_in(acme, actor)).patch(
        "/api/v1/teams/acme", {"description": "new"}, format="json"
    )

    assert_answer(response, expected)
    acme.refresh_from_db()
    assert acme.description == ("new" if expected == OK else "")


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        ("owner", GONE),
        ("admin", DENY),
        ("member", DENY),
        ("viewer", DENY),
        ("outsider", DENY),
        ("anonymous", AUTH),
    ],
)
def test_deleting_a_team_needs_owner(
    as_user: AsUser, acme: Team, actor: str, expected: int
) -> None:
    response = as_user(actor_in(acme, actor)).delete("/api/v1/teams/acme")

    assert_answer(response, expected)
    assert Team.objects.filter(id=acme.id).exists() is (expected != GONE)


# --- adding, changing and removing members ------------------------------------------------------

# fmt: off
# actor -> role granted to a newcomer -> expected status
ADD: dict[str, dict[str, int]] = {
    "owner":     {"owner": NEW,  "admin": NEW,  "member": NEW,  "viewer": NEW},
    "admin":     {"owner": DENY, "admin": NEW,  "member": NEW,  "viewer": NEW},
    "member":    {"owner": DENY, "admin": DENY, "member": DENY, "viewer": DENY},
    "viewer":    {"owner": DENY, "admin": DENY, "member": DENY, "viewer": DENY},
    "outsider":  {"owner": DENY, "admin": DENY, "member": DENY, "viewer": DENY},
    "anonymous": {"owner": AUTH, "admin": AUTH, "member": AUTH, "viewer": AUTH},
}

# actor -> (target's role, new role) -> expected status
CHANGE: dict[str, dict[tuple[str, str], int]] = {
    "owner": {
        ("member", "admin"): OK,   ("admin", "viewer"): OK,   ("viewer", "member"): OK,
        ("member", "owner"): OK,   ("owner", "admin"): OK,
    },
    "admin": {
        ("member", "admin"): OK,   ("admin", "viewer"): OK,   ("viewer", "member"): OK,
        ("member", "owner"): DENY, ("owner", "admin"): DENY,
    },
    "member": {
        ("member", "admin"): DENY, ("admin", "viewer"): DENY, ("viewer", "member"): DENY,
        ("member", "owner"): DENY, ("owner", "admin"): DENY,
    },
    "viewer": {
        ("member", "admin"): DENY, ("admin", "viewer"): DENY, ("viewer", "member"): DENY,
        ("member", "owner"): DENY, ("owner", "admin"): DENY,
    },
    "outsider": {
        ("member", "admin"): DENY, ("admin", "viewer"): DENY, ("viewer", "member"): DENY,
        ("member", "owner"): DENY, ("owner", "admin"): DENY,
    },
    "anonymous": {
        ("member", "admin"): AUTH, ("admin", "viewer"): AUTH, ("viewer", "member"): AUTH,
        ("member", "owner"): AUTH, ("owner", "admin"): AUTH,
    },
}

# actor -> target's role -> expected status of removing the target
REMOVE: dict[str, dict[str, int]] = {
    "owner":     {"owner": GONE, "admin": GONE, "member": GONE, "viewer": GONE},
    "admin":     {"owner": DENY, "admin": GONE, "member": GONE, "viewer": GONE},
    "member":    {"owner": DENY, "admin": DENY, "member": DENY, "viewer": DENY},
    "viewer":    {"owner": DENY, "admin": DENY, "member": DENY, "viewer": DENY},
    "outsider":  {"owner": DENY, "admin": DENY, "member": DENY, "viewer": DENY},
    "anonymous": {"owner": AUTH, "admin": AUTH, "member": AUTH, "viewer": AUTH},
}
# fmt: on


def add_cells() -> list[Any]:
    return [
        pytest.param(actor, role, expected, id=f"{actor}-grants-{role}")
        for actor, row in ADD.items()
        for role, expected in row.items()
    ]


def change_cells() -> list[Any]:
    return [
        pytest.param(actor, old, new, expected, id=f"{actor}-changes-{old}-to-{new}")
        for actor, row in CHANGE.items()
        for (old, new), expected in row.items()
    ]


def remove_cells() -> list[Any]:
    return [
        pytest.param(actor, role, expected, id=f"{actor}-removes-{role}")
        for actor, row in REMOVE.items()
        for role, expected in row.items()
    ]


@pytest.mark.parametrize(("actor", "role", "expected"), add_cells())
def test_add_member(as_user: AsUser, acme: Team, actor: str, role: str, expected: int) -> None:
    client = as_user(actor_in(acme, actor))
    UserFactory.create(username="newcomer")

    response = client.post(
        "/api/v1/teams/acme/members", {"username": "newcomer", "role": role}, format="json"
    )

    assert_answer(response, expected)
    assert role_in(acme, "newcomer") == (role if expected == NEW else None)


@pytest.mark.parametrize(("actor", "old", "new", "expected"), change_cells())
def test_change_member_role(
    as_user: AsUser, acme: Team, actor: str, old: str, new: str, expected: int
) -> None:
    client = as_user(actor_in(acme, actor))
    join(acme, "target", old)

    response = client.patch("/api/v1/teams/acme/members/target", {"role": new}, format="json")

    assert_answer(response, expected)
    assert role_in(acme, "target") == (new if expected == OK else old)


@pytest.mark.parametrize(("actor", "role", "expected"), remove_cells())
def test_remove_member(as_user: AsUser, acme: Team, actor: str, role: str, expected: int) -> None:
    client = as_user(actor_in(acme, actor))
    join(acme, "target", role)

    response = client.delete("/api/v1/teams/acme/members/target")

    assert_answer(response, expected)
    assert role_in(acme, "target") == (None if expected == GONE else role)


def test_admin_may_not_promote_themselves_to_owner(as_user: AsUser, acme: Team) -> None:
    admin = join(acme, "boss", Role.ADMIN)

    response = as_user(admin).patch(
        "/api/v1/teams/acme/members/boss", {"role": "owner"}, format="json"
    )

    assert_error(response, DENY, "permission_denied")
    assert role_in(acme, "boss") == "admin"


def test_adding_someone_already_in_the_team_is_a_conflict(as_user: AsUser, acme: Team) -> None:
    join(acme, "carol", Role.VIEWER)
    founder = User.objects.get(username="founder")

    response = as_user(founder).post(
        "/api/v1/teams/acme/members", {"username": "carol", "role": "admin"}, format="json"
    )

    assert_error(response, 409, "already_member")
    assert role_in(acme, "carol") == "viewer"


def test_adding_an_unknown_user_answers_404(as_user: AsUser, acme: Team) -> None:
    founder = User.objects.get(username="founder")

    response = as_user(founder).post(
        "/api/v1/teams/acme/members", {"username": "ghost"}, format="json"
    )

    assert_error(response, 404, "not_found")


def test_changing_someone_not_in_the_team_answers_404(as_user: AsUser, acme: Team) -> None:
    UserFactory.create(username="stranger")
    founder = User.objects.get(username="founder")

    response = as_user(founder).patch(
        "/api/v1/teams/acme/members/stranger", {"role": "admin"}, format="json"
    )

    assert_error(response, 404, "not_found")
    assert role_in(acme, "stranger") is None


# --- the last owner; leaving ---------------------------------------------------------------------


def test_last_owner_cannot_leave(as_user: AsUser, acme: Team) -> None:
    founder = User.objects.get(username="founder")

    response = as_user(founder).delete("/api/v1/teams/acme/members/founder")

    assert_error(response, 409, "last_owner")
    assert role_in(acme, "founder") == "owner"


@pytest.mark.parametrize("new_role", ["admin", "member", "viewer"])
def test_last_owner_cannot_step_down(as_user: AsUser, acme: Team, new_role: str) -> None:
    founder = User.objects.get(username="founder")

    response = as_user(founder).patch(
        "/api/v1/teams/acme/members/founder", {"role": new_role}, format="json"
    )

    assert_error(response, 409, "last_owner")
    assert role_in(acme, "founder") == "owner"


def test_last_owner_cannot_be_demoted_even_by_a_superuser(as_user: AsUser, acme: Team) -> None:
    root = UserFactory.create(username="root", is_superuser=True, is_staff=True)

    demoted = as_user(root).patch(
        "/api/v1/teams/acme/members/founder", {"role": "member"}, format="json"
    )
    removed = as_user(root).delete("/api/v1/teams/acme/members/founder")

    assert_error(demoted, 409, "last_owner")
    assert_error(removed, 409, "last_owner")
    assert role_in(acme, "founder") == "owner"


def test_an_owner_may_leave_when_another_owner_remains(as_user: AsUser, acme: Team) -> None:
    join(acme, "second", Role.OWNER)
    founder = User.objects.get(username="founder")

    response = as_user(founder).delete("/api/v1/teams/acme/members/founder")

    assert response.status_code == GONE, response.content
    assert role_in(acme, "founder") is None
    assert role_in(acme, "second") == "owner"


def test_an_owner_may_step_down_when_another_owner_remains(as_user: AsUser, acme: Team) -> None:
    join(acme, "second", Role.OWNER)
    founder = User.objects.get(username="founder")

    response = as_user(founder).patch(
        "/api/v1/teams/acme/members/founder", {"role": "admin"}, format="json"
    )

    assert response.status_code == OK, response.content
    assert role_in(acme, "founder") == "admin"


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
def test_a_member_may_leave_by_themselves(as_user: AsUser, acme: Team, role: str) -> None:
    leaver = join(acme, "leaver", role)

    response = as_user(leaver).delete("/api/v1/teams/acme/members/LEAVER")

    assert response.status_code == GONE, response.content
    assert role_in(acme, "leaver") is None


def test_leaving_a_team_you_are_not_in_answers_404(as_user: AsUser, acme: Team) -> None:
    outsider = UserFactory.create(username="outsider")

    response = as_user(outsider).delete("/api/v1/teams/acme/members/outsider")

    assert_error(response, 404, "not_found")


def demote(team: Team, actor: User, target: User) -> None:
    team_member_change_role(team=team, actor=actor, username=target.username, role=Role.MEMBER)


def remove(team: Team, actor: User, target: User) -> None:
    team_member_remove(team=team, actor=actor, username=target.username)


@pytest.mark.django_db(transaction=True)  # the threads must see each other's commits
@pytest.mark.parametrize("change", [demote, remove], ids=["demote", "remove"])
def test_two_owners_ousting_each_other_at_once_leave_exactly_one_owner(
    postgres: None, change: Callable[[Team, User, User], None]
) -> None:
    """Both requests race; one wins, the other gets a clean refusal, never a database error.

    Each round is a fresh team with two owners who demote (or remove) each other from two
    threads. A deadlock between the two transactions used to surface as an OperationalError (a
    500) in about a third of the rounds, so twenty rounds catch it reliably.
    """
    outcomes: list[str] = []
    for round_ in range(20):
        team = TeamFactory.create(name=f"race{round_}")
        first = join(team, f"first{round_}", Role.OWNER)
        second = join(team, f"second{round_}", Role.OWNER)

        outcomes += at_once(
            partial(change, team, first, second), partial(change, team, second, first)
        )

        owners = Membership.objects.filter(team=team, role=Role.OWNER).count()
        assert owners == 1, outcomes
    unexpected = [o for o in outcomes if o not in {"ok", "permission_denied", "last_owner"}]
    assert unexpected == []
    assert outcomes.count("ok") == 20


# --- the team's projects ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        ("owner", NEW),
        ("admin", NEW),
        ("member", NEW),
        ("viewer", DENY),
        ("outsider", DENY),
    ],
)
def test_creating_a_team_project_needs_member(
    as_user: AsUser, acme: Team, actor: str, expected: int
) -> None:
    response = as_user(actor_in(acme, actor)).post(
        "/api/v1/projects", {"name": "mnist", "owner": "acme"}, format="json"
    )

    assert_answer(response, expected)
    created = Project.objects.filter(owner_team=acme, name="mnist").exists()
    assert created is (expected == NEW)
    if expected == NEW:
        assert response.json()["full_name"] == "acme/mnist"
        assert response.json()["owner_kind"] == "team"
        assert response.json()["role"] == actor


def test_team_viewer_sees_a_private_team_project_but_cannot_change_it(
    as_user: AsUser, acme: Team
) -> None:
    project = ProjectFactory.create(
        owner_user=None, owner_team=acme, name="secret", visibility=Visibility.PRIVATE
    )
    viewer = as_user(join(acme, "watcher", Role.VIEWER))

    seen = viewer.get("/api/v1/projects/acme/secret")
    changed = viewer.patch(
        "/api/v1/projects/acme/secret", {"description": "mine now"}, format="json"
    )

    assert seen.status_code == OK, seen.content
    assert seen.json()["role"] == "viewer"
    assert_error(changed, DENY, "permission_denied")
    project.refresh_from_db()
    assert project.description == ""


def test_leaving_the_team_takes_away_its_private_projects(as_user: AsUser, acme: Team) -> None:
    ProjectFactory.create(
        owner_user=None, owner_team=acme, name="secret", visibility=Visibility.PRIVATE
    )
    member = join(acme, "leaver", Role.MEMBER)
    client = as_user(member)
    assert client.get("/api/v1/projects/acme/secret").status_code == OK

    client.delete("/api/v1/teams/acme/members/leaver")

    assert_error(client.get("/api/v1/projects/acme/secret"), 404, "not_found")
