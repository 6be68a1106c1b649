"""The permission matrix of projects: every actor, visibility and action, written out by hand.

The expectations below are literal. None is computed with ``projects.policy`` or
``accounts.roles``, so a change to the rules has to change this table too, on purpose.

The policy the table spells out:

* effective role = the highest of: owning a user-owned project (owner), the role in the team
  that owns a team project, and a collaborator role on the project; a superuser is an owner;
* viewing a public project needs nothing; a private one needs viewer;
* the collaborator list needs viewer even on a public project;
* editing and adding collaborators need admin; deleting, and granting or taking away the owner
  collaborator role, need owner;
* whoever may not see a private project gets 404, never 403; an anonymous caller who sees the
  project but may not act gets 401, a logged-in one 403. Anonymous writes answer 401 before any
  lookup, so they say nothing about which projects exist either.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import User
from accounts.roles import Role
from projects.models import Project, ProjectMember, Visibility
from tests.factories import (
    MembershipFactory,
    ProjectFactory,
    ProjectMemberFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

AsUser = Callable[[User | None], APIClient]

OK, NEW, GONE = 200, 201, 204
AUTH, DENY, HIDE = 401, 403, 404
YES, NO = True, False

ERROR_CODE = {AUTH: "not_authenticated", DENY: "permission_denied", HIDE: "not_found"}

# Columns: the `role` field the actor sees, then
#   view    GET the project
#   list    whether it appears in GET /projects
#   patch   PATCH its description
#   delete  DELETE it
#   membs   GET its collaborators
#   add     POST a new collaborator (role member)
#   grant   PATCH a viewer collaborator to owner
#   revoke  PATCH an owner collaborator down to viewer
#   remove  DELETE an owner collaborator
Cells = tuple[str | None, int, bool, int, int, int, int, int, int, int]

# fmt: off
USER_OWNED: dict[str, dict[str, Cells]] = {
    "public": {
        #                  role      view list patch delete membs add  grant revoke remove
        "owner":          ("owner",  OK,  YES, OK,   GONE,  OK,   NEW, OK,   OK,    GONE),
        "collab_admin":   ("admin",  OK,  YES, OK,   DENY,  OK,   NEW, DENY, DENY,  DENY),
        "collab_member":  ("member", OK,  YES, DENY, DENY,  OK,   DENY, DENY, DENY, DENY),
        "collab_viewer":  ("viewer", OK,  YES, DENY, DENY,  OK,   DENY, DENY, DENY, DENY),
        "outsider":       (None,     OK,  YES, DENY, DENY,  DENY, DENY, DENY, DENY, DENY),
        "anonymous":      (None,     OK,  YES, AUTH, AUTH,  AUTH, AUTH, AUTH, AUTH, AUTH),
        "superuser":      ("owner",  OK,  YES, OK,   GONE,  OK,   NEW, OK,   OK,    GONE),
    },
    "private": {
        "owner":          ("owner",  OK,  YES, OK,   GONE,  OK,   NEW, OK,   OK,    GONE),
        "collab_admin":   ("admin",  OK,  YES, OK,   DENY,  OK,   NEW, DENY, DENY,  DENY),
        "collab_member":  ("member", OK,  YES, DENY, DENY,  OK,   DENY, DENY, DENY, DENY),
        "collab_viewer":  ("viewer", OK,  YES, DENY, DENY,  OK,   DENY, DENY, DENY, DENY),
        "outsider":       (None,     HIDE, NO, HIDE, HIDE,  HIDE, HIDE, HIDE, HIDE, HIDE),
        "anonymous":      (None,     HIDE, NO, AUTH, AUTH,  HIDE, AUTH, AUTH, AUTH, AUTH),
        "superuser":      ("owner",  OK,  YES, OK,   GONE,  OK,   NEW, OK,   OK,    GONE),
    },
}

TEAM_OWNED: dict[str, dict[str, Cells]] = {
    "public": {
        #                            role      view list patch delete membs add  grant revoke remove
        "team_owner":               ("owner",  OK,  YES, OK,   GONE,  OK,   NEW, OK,   OK,    GONE),
        "team_admin":               ("admin",  OK,  YES, OK,   DENY,  OK,   NEW, DENY, DENY,  DENY),
        "team_member":              ("member", OK,  YES, DENY, DENY,  OK,   DENY, DENY, DENY, DENY),
        "team_viewer":              ("viewer", OK,  YES, DENY, DENY,  OK,   DENY, DENY, DENY, DENY),
        "collab_not_in_team":       ("member", OK,  YES, DENY, DENY,  OK,   DENY, DENY, DENY, DENY),
        "team_viewer_collab_admin": ("admin",  OK,  YES, OK,   DENY,  OK,   NEW, DENY, DENY,  DENY),
        "team_admin_collab_viewer": ("admin",  OK,  YES, OK,   DENY,  OK,   NEW, DENY, DENY,  DENY),
        "outsider":                 (None,     OK,  YES, DENY, DENY,  DENY, DENY, DENY, DENY, DENY),
        "anonymous":                (None,     OK,  YES, AUTH, AUTH,  AUTH, AUTH, AUTH, AUTH, AUTH),
        "superuser":                ("owner",  OK,  YES, OK,   GONE,  OK,   NEW, OK,   OK,    GONE),
    },
    "private": {
        "team_owner":               ("owner",  OK,  YES, OK,   GONE,  OK,   NEW, OK,   OK,    GONE),
        "team_admin":               ("admin",  OK,  YES, OK,   DENY,  OK,   NEW, DENY, DENY,  DENY),
        "team_member":              ("member", OK,  YES, DENY, DENY,  OK,   DENY, DENY, DENY, DENY),
        "team_viewer":              ("viewer", OK,  YES, DENY, DENY,  OK,   DENY, DENY, DENY, DENY),
        "collab_not_in_team":       ("member", OK,  YES, DENY, DENY,  OK,   DENY, DENY, DENY, DENY),
        "team_viewer_collab_admin": ("admin",  OK,  YES, OK,   DENY,  OK,   NEW, DENY, DENY,  DENY),
        "team_admin_collab_viewer": ("admin",  OK,  YES, OK,   DENY,  OK,   NEW, DENY, DENY,  DENY),
        "outsider":                 (None,     HIDE, NO, HIDE, HIDE,  HIDE, HIDE, HIDE, HIDE, HIDE),
        "anonymous":                (None,     HIDE, NO, AUTH, AUTH,  HIDE, AUTH, AUTH, AUTH, AUTH),
        "superuser":                ("owner",  OK,  YES, OK,   GONE,  OK,   NEW, OK,   OK,    GONE),
    },
}
# fmt: on

COLUMNS = ("role", "view", "list", "patch", "delete", "membs", "add", "grant", "revoke", "remove")
TABLES = {"user": USER_OWNED, "team": TEAM_OWNED}


def cells(column: str) -> list[Any]:
    """One pytest param per row of the table: (owner_kind, visibility, actor, expected)."""
    index = COLUMNS.index(column)
    return [
        pytest.param(kind, visibility, actor, row[index], id=f"{kind}-{visibility}-{actor}")
        for kind, table in TABLES.items()
        for visibility, rows in table.items()
        for actor, row in rows.items()
    ]


def roles_of_visible_rows() -> list[Any]:
    """(kind, visibility, actor, role) for every row whose actor may see the project."""
    view = COLUMNS.index("view")
    return [
        pytest.param(kind, visibility, actor, row[0], id=f"{kind}-{visibility}-{actor}")
        for kind, table in TABLES.items()
        for visibility, rows in table.items()
        for actor, row in rows.items()
        if row[view] == OK
    ]


PARAMS = ("kind", "visibility", "actor", "expected")

# --- the stage: one project, its cast, and the collaborators that actions act on ----------------

# Collaborators every stage has besides the actors: one to promote to owner, one owner to demote
# or remove. `newcomer` has no relation and is the one added as a collaborator.
TARGET_VIEWER = "target_viewer"
TARGET_OWNER = "target_owner"
NEWCOMER = "newcomer"
OLD_DESCRIPTION = "before"
NEW_DESCRIPTION = "after"


@dataclass
class Stage:
    project: Project
    cast: dict[str, User | None]

    @property
    def url(self) -> str:
        return f"/api/v1/projects/{self.project.full_name}"


def user(name: str, **extra: Any) -> User:
    return UserFactory.create(username=name, **extra)


def user_owned_stage(visibility: str) -> Stage:
    owner = user("owner")
    project = ProjectFactory.create(
        owner_user=owner, name="atlas", visibility=visibility, description=OLD_DESCRIPTION
    )
    cast: dict[str, User | None] = {"owner": owner, "anonymous": None}
    for role in ("admin", "member", "viewer"):
        cast[f"collab_{role}"] = ProjectMemberFactory.create(
            project=project, user=user(f"collab_{role}"), role=role
        ).user
    return finish_stage(project, cast)


def team_owned_stage(visibility: str) -> Stage:
    team = TeamFactory.create(name="acme")
    project = ProjectFactory.create(
        owner_user=None,
        owner_team=team,
        name="atlas",
        visibility=visibility,
        description=OLD_DESCRIPTION,
    )
    cast: dict[str, User | None] = {"anonymous": None}
    for role in ("owner", "admin", "member", "viewer"):
        cast[f"team_{role}"] = MembershipFactory.create(
            team=team, user=user(f"team_{role}"), role=role
        ).user
    cast["collab_not_in_team"] = ProjectMemberFactory.create(
        project=project, user=user("collab_not_in_team"), role=Role.MEMBER
    ).user
    both = user("team_viewer_collab_admin")
    MembershipFactory.create(team=team, user=both, role=Role.VIEWER)
    ProjectMemberFactory.create(project=project, user=both, role=Role.ADMIN)
    cast[both.username] = both
    both = user("team_admin_collab_viewer")
    MembershipFactory.create(team=team, user=both, role=Role.ADMIN)
    ProjectMemberFactory.create(project=project, user=both, role=Role.VIEWER)
    cast[both.username] = both
    return finish_stage(project, cast)


def finish_stage(project: Project, cast: dict[str, User | None]) -> Stage:
    cast["outsider"] = user("outsider")
    cast["superuser"] = user("superuser", is_superuser=True, is_staff=True)
    ProjectMemberFactory.create(project=project, user=user(TARGET_VIEWER), role=Role.VIEWER)
    ProjectMemberFactory.create(project=project, user=user(TARGET_OWNER), role=Role.OWNER)
    user(NEWCOMER)
    return Stage(project=project, cast=cast)


def stage_for(kind: str, visibility: str) -> Stage:
    return user_owned_stage(visibility) if kind == "user" else team_owned_stage(visibility)


def collaborator_role(project: Project, username: str) -> str | None:
    member = ProjectMember.objects.filter(project=project, user__username=username).first()
    return member.role if member else None


def assert_answer(response: Any, expected: int) -> None:
    assert response.status_code == expected, response.content
    if expected >= 400:
        body = response.json()
        assert body["error"]["code"] == ERROR_CODE[expected], body
        assert set(body["error"]) == {"code", "message", "fields"}


# --- one test per column ------------------------------------------------------------------------


@pytest.mark.parametrize(PARAMS, cells("view"))
def test_get_project_detail(
    as_user: AsUser, kind: str, visibility: str, actor: str, expected: int
) -> None:
    stage = stage_for(kind, visibility)

    response = as_user(stage.cast[actor]).get(stage.url)

    assert_answer(response, expected)
    if expected == OK:
        assert response.json()["full_name"] == stage.project.full_name


@pytest.mark.parametrize(("kind", "visibility", "actor", "role"), roles_of_visible_rows())
def test_role_field_is_the_effective_role(
    as_user: AsUser, kind: str, visibility: str, actor: str, role: str | None
) -> None:
    stage = stage_for(kind, visibility)
    client = as_user(stage.cast[actor])

    detail = client.get(stage.url)
    listed = client.get("/api/v1/projects", {"page_size": 200})

    assert detail.status_code == 200, detail.content
    assert detail.json()["role"] == role
    [row] = [p for p in listed.json()["results"] if p["id"] == stage.project.id]
    assert row["role"] == role


@pytest.mark.parametrize(PARAMS, cells("list"))
def test_project_appears_in_list(
    as_user: AsUser, kind: str, visibility: str, actor: str, expected: bool
) -> None:
    stage = stage_for(kind, visibility)
    ProjectFactory.create(name="someone-elses-secret", visibility=Visibility.PRIVATE)

    response = as_user(stage.cast[actor]).get("/api/v1/projects", {"page_size": 200})

    assert response.status_code == 200, response.content
    names = [p["full_name"] for p in response.json()["results"]]
    assert (stage.project.full_name in names) is expected
    assert response.json()["count"] == len(names)
    if actor != "superuser":
        assert not any(name.endswith("/someone-elses-secret") for name in names)


@pytest.mark.parametrize(PARAMS, cells("patch"))
def test_patch_project_description(
    as_user: AsUser, kind: str, visibility: str, actor: str, expected: int
) -> None:
    stage = stage_for(kind, visibility)

    response = as_user(stage.cast[actor]).patch(
        stage.url, {"description": NEW_DESCRIPTION}, format="json"
    )

    assert_answer(response, expected)
    stage.project.refresh_from_db()
    changed = NEW_DESCRIPTION if expected == OK else OLD_DESCRIPTION
    assert stage.project.description == changed


@pytest.mark.parametrize(PARAMS, cells("delete"))
def test_delete_project(
    as_user: AsUser, kind: str, visibility: str, actor: str, expected: int
) -> None:
    stage = stage_for(kind, visibility)

    response = as_user(stage.cast[actor]).delete(stage.url)

    assert_answer(response, expected)
    still_there = Project.objects.filter(id=stage.project.id).exists()
    assert still_there is (expected != GONE)


@pytest.mark.parametrize(PARAMS, cells("membs"))
def test_list_collaborators(
    as_user: AsUser, kind: str, visibility: str, actor: str, expected: int
) -> None:
    stage = stage_for(kind, visibility)

    response = as_user(stage.cast[actor]).get(f"{stage.url}/members")

    assert_answer(response, expected)
    if expected == OK:
        names = [m["username"] for m in response.json()["results"]]
        assert names == sorted(
            ProjectMember.objects.filter(project=stage.project).values_list(
                "user__username", flat=True
            )
        )
        assert TARGET_OWNER in names


@pytest.mark.parametrize(PARAMS, cells("add"))
def test_add_collaborator(
    as_user: AsUser, kind: str, visibility: str, actor: str, expected: int
) -> None:
    stage = stage_for(kind, visibility)

    response = as_user(stage.cast[actor]).post(
        f"{stage.url}/members", {"username": NEWCOMER, "role": "member"}, format="json"
    )

    assert_answer(response, expected)
    added = "member" if expected == NEW else None
    assert collaborator_role(stage.project, NEWCOMER) == added


@pytest.mark.parametrize(PARAMS, cells("grant"))
def test_grant_owner_role_to_collaborator(
    as_user: AsUser, kind: str, visibility: str, actor: str, expected: int
) -> None:
    stage = stage_for(kind, visibility)

    response = as_user(stage.cast[actor]).patch(
        f"{stage.url}/members/{TARGET_VIEWER}", {"role": "owner"}, format="json"
    )

    assert_answer(response, expected)
    now = "owner" if expected == OK else "viewer"
    assert collaborator_role(stage.project, TARGET_VIEWER) == now


@pytest.mark.parametrize(PARAMS, cells("revoke"))
def test_demote_owner_collaborator(
    as_user: AsUser, kind: str, visibility: str, actor: str, expected: int
) -> None:
    stage = stage_for(kind, visibility)

    response = as_user(stage.cast[actor]).patch(
        f"{stage.url}/members/{TARGET_OWNER}", {"role": "viewer"}, format="json"
    )

    assert_answer(response, expected)
    now = "viewer" if expected == OK else "owner"
    assert collaborator_role(stage.project, TARGET_OWNER) == now


@pytest.mark.parametrize(PARAMS, cells("remove"))
def test_remove_owner_collaborator(
    as_user: AsUser, kind: str, visibility: str, actor: str, expected: int
) -> None:
    stage = stage_for(kind, visibility)

    response = as_user(stage.cast[actor]).delete(f"{stage.url}/members/{TARGET_OWNER}")

    assert_answer(response, expected)
    now = None if expected == GONE else "owner"
    assert collaborator_role(stage.project, TARGET_OWNER) == now


# --- what the matrix cannot show on its own -----------------------------------------------------


def test_admin_may_add_a_collaborator_as_owner_only_if_owner(as_user: AsUser) -> None:
    stage = user_owned_stage(Visibility.PRIVATE)

    by_admin = as_user(stage.cast["collab_admin"]).post(
        f"{stage.url}/members", {"username": NEWCOMER, "role": "owner"}, format="json"
    )
    by_owner = as_user(stage.cast["owner"]).post(
        f"{stage.url}/members", {"username": NEWCOMER, "role": "owner"}, format="json"
    )

    assert_answer(by_admin, DENY)
    assert_answer(by_owner, NEW)
    assert collaborator_role(stage.project, NEWCOMER) == "owner"


def test_owner_collaborator_may_delete_the_project(as_user: AsUser) -> None:
    stage = user_owned_stage(Visibility.PRIVATE)
    target_owner = User.objects.get(username=TARGET_OWNER)

    response = as_user(target_owner).delete(stage.url)

    assert_answer(response, GONE)
    assert not Project.objects.filter(id=stage.project.id).exists()


@pytest.mark.parametrize(
    ("owner", "hidden", "missing"),
    [("owner", "atlas", "absent"), ("OWNER", "ATLAS", "ABSENT")],
    ids=["same-case", "other-case"],
)
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_hidden_project_answers_exactly_like_a_missing_one(
    as_user: AsUser, method: str, owner: str, hidden: str, missing: str
) -> None:
    stage = user_owned_stage(Visibility.PRIVATE)
    call = getattr(as_user(stage.cast["outsider"]), method)
    body = {"description": "x"} if method == "patch" else None

    to_hidden = call(f"/api/v1/projects/{owner}/{hidden}", body, format="json")
    to_missing = call(f"/api/v1/projects/{owner}/{missing}", body, format="json")

    assert to_hidden.status_code == to_missing.status_code == HIDE
    # The only difference may be the project name the caller typed; the rest, the owner's name
    # and its spelling included, must be the same.
    assert name_blanked(to_hidden.json(), hidden) == name_blanked(to_missing.json(), missing)


def test_leaving_a_hidden_project_answers_like_leaving_a_missing_one(as_user: AsUser) -> None:
    stage = user_owned_stage(Visibility.PRIVATE)
    outsider = as_user(stage.cast["outsider"])

    to_hidden = outsider.delete("/api/v1/projects/owner/atlas/members/outsider")
    to_missing = outsider.delete("/api/v1/projects/owner/absent/members/outsider")

    assert to_hidden.status_code == to_missing.status_code == HIDE
    assert name_blanked(to_hidden.json(), "atlas") == name_blanked(to_missing.json(), "absent")


def name_blanked(body: dict[str, Any], name: str) -> dict[str, Any]:
    error = dict(body["error"])
    error["message"] = re.sub(re.escape(name), "<name>", error["message"], flags=re.IGNORECASE)
    return error


def test_collaborator_may_leave_a_private_project(as_user: AsUser) -> None:
    stage = user_owned_stage(Visibility.PRIVATE)

    response = as_user(stage.cast["collab_viewer"]).delete(f"{stage.url}/members/collab_viewer")

    assert_answer(response, GONE)
    assert collaborator_role(stage.project, "collab_viewer") is None


def test_anonymous_write_to_a_missing_project_answers_like_to_a_private_one(
    as_user: AsUser,
) -> None:
    stage = user_owned_stage(Visibility.PRIVATE)
    anonymous = as_user(None)

    to_private = anonymous.patch(stage.url, {"description": "x"}, format="json")
    to_missing = anonymous.patch(
        "/api/v1/projects/owner/absent", {"description": "x"}, format="json"
    )

    assert to_private.status_code == to_missing.status_code == AUTH
    assert to_private.json() == to_missing.json()


# --- the list endpoint costs the same for 3 projects as for 20 ----------------------------------


def make_projects(viewer: User, team_id: int, count: int, start: int, public: bool) -> None:
    """``count`` projects ``viewer`` sees: all public, or in turn own, team's, shared, public."""
    for i in range(start, start + count):
        kind = 3 if public else i % 4
        if kind == 0:
            ProjectFactory.create(owner_user=viewer, name=f"p{i}")
        elif kind == 1:
            ProjectFactory.create(owner_user=None, owner_team_id=team_id, name=f"p{i}")
        elif kind == 2:
            ProjectMemberFactory.create(
                project=ProjectFactory.create(name=f"p{i}"), user=viewer, role="admin"
            )
        else:
            ProjectFactory.create(name=f"p{i}", visibility=Visibility.PUBLIC)


@pytest.mark.parametrize("who", ["member", "anonymous", "superuser"])
def test_project_list_query_count_does_not_grow_with_projects(as_user: AsUser, who: str) -> None:
    viewer = user("viewer", is_superuser=(who == "superuser"))
    team = TeamFactory.create(name="acme")
    MembershipFactory.create(team=team, user=viewer, role=Role.MEMBER)
    client = as_user(None if who == "anonymous" else viewer)
    client.get("/api/v1/projects")  # the token's first use records last_used_at; not counted

    public = who == "anonymous"  # the only projects an anonymous caller sees

    make_projects(viewer, team.id, 3, start=0, public=public)
    with CaptureQueriesContext(connection) as few:
        small = client.get("/api/v1/projects", {"page_size": 200})
    make_projects(viewer, team.id, 17, start=3, public=public)
    with CaptureQueriesContext(connection) as many:
        large = client.get("/api/v1/projects", {"page_size": 200})

    assert len(small.json()["results"]) == 3
    assert len(large.json()["results"]) == 20
    assert len(many.captured_queries) == len(few.captured_queries), [
        q["sql"] for q in many.captured_queries
    ]


def test_project_list_shows_each_role_without_a_query_per_row(as_user: AsUser) -> None:
    viewer = user("viewer")
    team = TeamFactory.create(name="acme")
    MembershipFactory.create(team=team, user=viewer, role=Role.MEMBER)
    make_projects(viewer, team.id, 8, start=0, public=False)
    client = as_user(viewer)
    client.get("/api/v1/projects")

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/projects", {"page_size": 200})

    roles = {p["name"]: p["role"] for p in response.json()["results"]}
    assert roles == {
        "p0": "owner", "p1": "member", "p2": "admin", "p3": None,
        "p4": "owner", "p5": "member", "p6": "admin", "p7": None,
    }  # fmt: skip
    # token, count, page, team roles, collaborator roles, the projects' newest jobs
    assert len(queries.captured_queries) <= 6, [q["sql"] for q in queries.captured_queries]
