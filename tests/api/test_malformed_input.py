"""No malformed request gets a 500 or changes anything.

Every write endpoint gets the same battery: broken JSON, bodies that are not objects, wrong
types, unknown fields, huge values and bodies, Unicode that PostgreSQL cannot store or that has no
place in a name, the wrong Content-Type. The list endpoints get odd query parameters, the detail
routes odd path segments, and every route the methods it does not have. Each answer must be a 4xx
in the API's error body, and the database must be exactly as it was before the request.

The Django test client re-raises an exception a view did not handle, so a request that would
have been a 500 fails its test with the traceback.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import Membership, Team, User
from accounts.roles import Role
from projects.models import Project, ProjectMember
from tests.factories import (
    MembershipFactory,
    ProjectFactory,
    ProjectMemberFactory,
    TeamFactory,
    UserFactory,
)
from tests.support.api_errors import assert_error, nothing_written

pytestmark = pytest.mark.django_db

JSON = "application/json"


# --- the cast and the endpoints -----------------------------------------------------------------


@dataclass(frozen=True)
class Cast:
    """alice owns team acme (bob is a member) and project alice/mnist (bob collaborates)."""

    alice: APIClient
    anonymous: APIClient
    team: Team
    project: Project


@pytest.fixture
def cast(alice: User, alice_client: APIClient) -> Cast:
    bob = UserFactory.create(username="bob")
    UserFactory.create(username="carol")
    team = TeamFactory.create(name="acme")
    MembershipFactory.create(team=team, user=alice, role=Role.OWNER)
    MembershipFactory.create(team=team, user=bob, role=Role.MEMBER)
    project = ProjectFactory.create(owner_user=alice, name="mnist", description="digits")
    ProjectMemberFactory.create(project=project, user=bob, role=Role.MEMBER)
    return Cast(alice=alice_client, anonymous=APIClient(), team=team, project=project)


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    valid: dict[str, Any]
    strings: tuple[str, ...] = ()  # text fields
    choices: tuple[str, ...] = ()  # fields that take one of a fixed set of values
    required: tuple[str, ...] = ()
    name_field: str | None = None  # a name that appears in addresses: ASCII only
    text_field: str | None = None  # free text for people: any Unicode PostgreSQL can store
    anonymous: bool = False
    success: int = 201

    def client(self, cast: Cast) -> APIClient:
        return cast.anonymous if self.anonymous else cast.alice

    @property
    def first_field(self) -> str:
        return (self.strings or self.choices)[0]


SIGNUP = Endpoint(
    "signup", "POST", "/api/v1/auth/signup",
    valid={"username": "dave", "email": "dave@example.com", "password": "a long, odd passphrase"},
    strings=("username", "email", "password"), required=("username", "email", "password"),
    name_field="username", anonymous=True,
)  # fmt: skip
LOGIN = Endpoint(
    "login", "POST", "/api/v1/auth/login",
    valid={"username": "alice", "password": "correct horse battery staple"},
    strings=("username", "password"), required=("username", "password"), anonymous=True,
    success=200,
)  # fmt: skip
TOKEN_CREATE = Endpoint(
    "token-create", "POST", "/api/v1/user/tokens",
    valid={"name": "laptop", "scope": "read", "expires_in_days": 30},
    strings=("name",), choices=("scope",), required=("name",), text_field="name",
)  # fmt: skip
TEAM_CREATE = Endpoint(
    "team-create", "POST", "/api/v1/teams",
    valid={"name": "vision", "display_name": "Vision", "description": "Eyes."},
    strings=("name", "display_name", "description"), required=("name",),
    name_field="name", text_field="description",
)  # fmt: skip
TEAM_UPDATE = Endpoint(
    "team-update", "PATCH", "/api/v1/teams/acme",
    valid={"display_name": "Acme Corp", "description": "Everything."},
    strings=("display_name", "description"), text_field="description", success=200,
)  # fmt: skip
TEAM_MEMBER_ADD = Endpoint(
    "team-member-add", "POST", "/api/v1/teams/acme/members",
    valid={"username": "carol", "role": "viewer"},
    strings=("username",), choices=("role",), required=("username",), name_field="username",
)  # fmt: skip
TEAM_MEMBER_CHANGE = Endpoint(
    "team-member-change", "PATCH", "/api/v1/teams/acme/members/bob",
    valid={"role": "admin"}, choices=("role",), required=("role",), success=200,
)  # fmt: skip
PROJECT_CREATE = Endpoint(
    "project-create", "POST", "/api/v1/projects",
    valid={"name": "cifar", "owner": "acme", "description": "Ten classes.", "visibility": "public"},
    strings=("name", "owner", "description"), choices=("visibility",), required=("name",),
    name_field="name", text_field="description",
)  # fmt: skip
PROJECT_UPDATE = Endpoint(
    "project-update", "PATCH", "/api/v1/projects/alice/mnist",
    valid={"name": "digits", "description": "Handwritten.", "visibility": "public"},
    strings=("name", "description"), choices=("visibility",),
    name_field="name", text_field="description", success=200,
)  # fmt: skip
PROJECT_MEMBER_ADD = Endpoint(
    "project-member-add", "POST", "/api/v1/projects/alice/mnist/members",
    valid={"username": "carol", "role": "viewer"},
    strings=("username",), choices=("role",), required=("username",), name_field="username",
)  # fmt: skip
PROJECT_MEMBER_CHANGE = Endpoint(
    "project-member-change", "PATCH", "/api/v1/projects/alice/mnist/members/bob",
    valid={"role": "admin"}, choices=("role",), required=("role",), success=200,
)  # fmt: skip

ENDPOINTS = (
    SIGNUP, LOGIN, TOKEN_CREATE, TEAM_CREATE, TEAM_UPDATE, TEAM_MEMBER_ADD, TEAM_MEMBER_CHANGE,
    PROJECT_CREATE, PROJECT_UPDATE, PROJECT_MEMBER_ADD, PROJECT_MEMBER_CHANGE,
)  # fmt: skip


def send(client: APIClient, method: str, path: str, body: bytes, content_type: str = JSON) -> Any:
    # The stubs say str; Django sends bytes as they are, which is the point here.
    return client.generic(method, path, data=body, content_type=content_type)  # type: ignore[arg-type]


def dumps(value: Any, *, ascii_only: bool = True) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode()


def with_field(endpoint: Endpoint, name: str, raw_value: bytes) -> bytes:
    """The endpoint's valid body with ``name`` set to ``raw_value``, spliced in as raw JSON."""
    rest = {key: value for key, value in endpoint.valid.items() if key != name}
    head = dumps(rest)[:-1] + (b", " if rest else b"")
    return head + dumps(name) + b": " + raw_value + b"}"


# --- the valid body works, so every refusal below is about the malformation -------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_the_valid_body_is_accepted(endpoint: Endpoint, cast: Cast) -> None:
    response = send(endpoint.client(cast), endpoint.method, endpoint.path, dumps(endpoint.valid))

    assert response.status_code == endpoint.success, response.json()


# --- bodies -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BodyCase:
    id: str
    body: bytes
    status: int = 400
    code: str = "parse_error"
    field: str | None = None  # must be named in the error's "fields"
    content_type: str = JSON


NESTED_LISTS = b"[" * 10_000 + b"]" * 10_000
NESTED_OBJECTS = b'{"a": ' * 10_000 + b"1" + b"}" * 10_000
MEGABYTE = "x" * 1_000_000

# Names appear in addresses such as acme/mnist, so they are plain ASCII; each of these could
# pass for another name on screen, or not be seen at all.
ODD_NAMES = {
    "rtl-override": "\u202eemca",
    "zero-width-space": "ac\u200bme",
    "zero-width-joiner": "ac\u200dme",
    "byte-order-mark": "\ufeffacme",
    "emoji": "acme\U0001f680",
    "cyrillic-a": "\u0430cme",
    "fullwidth": "\uff41\uff43\uff4d\uff45",
    "combining-accent": "acme\u0301",
    "newline-inside": "ac\nme",
}
TEXT_SAMPLES = {
    "emoji": "Rockets \U0001f680 and sparkles \u2728",
    "rtl-override": "\u202eevil.exe",
    "zero-width": "a\u200bb\u200dc\ufeff",
    "hebrew": "\u05e9\u05dc\u05d5\u05dd",
    "combining-accent": "cafe\u0301",
}


def json_syntax_cases(endpoint: Endpoint) -> Iterator[BodyCase]:
    valid = dumps(endpoint.valid)
    yield BodyCase("bare-word", b"hello")
    yield BodyCase("single-quotes", b"{'name': 'x'}")
    yield BodyCase("unquoted-key", b"{name: 1}")
    yield BodyCase("trailing-comma", valid[:-1] + b",}")
    yield BodyCase("two-documents", valid + valid)
    yield BodyCase("truncated-half", valid[: len(valid) // 2])
    yield BodyCase("truncated-last-brace", valid[:-1])
    yield BodyCase("unterminated-string", b'{"' + endpoint.first_field.encode() + b'": "abc')
    yield BodyCase("raw-control-character", with_field(endpoint, endpoint.first_field, b'"a\tb"'))
    for literal in ("NaN", "Infinity", "-Infinity"):
        raw = literal.encode()
        yield BodyCase(f"literal-{literal}", with_field(endpoint, endpoint.first_field, raw))
    yield BodyCase("number-with-5000-digits", with_field(endpoint, "n", b"1" + b"0" * 5000))
    yield BodyCase("nested-10000-lists", NESTED_LISTS)
    yield BodyCase("nested-10000-objects", NESTED_OBJECTS)
    yield BodyCase(
        "nested-10000-in-a-field", with_field(endpoint, endpoint.first_field, NESTED_LISTS)
    )
    yield BodyCase("nested-100-in-a-field", with_field(endpoint, "x", b"[" * 100 + b"]" * 100))


def encoding_cases(endpoint: Endpoint) -> Iterator[BodyCase]:
    name = endpoint.first_field
    yield BodyCase("invalid-utf8-byte", with_field(endpoint, name, b'"\xff\xfe"'))
    yield BodyCase("latin-1", with_field(endpoint, name, b'"caf\xe9"'))
    yield BodyCase("overlong-utf8", with_field(endpoint, name, b'"\xc0\xaf"'))
    yield BodyCase("utf8-encoded-surrogate", with_field(endpoint, name, b'"\xed\xa0\x80"'))
    yield BodyCase("utf16-body", json.dumps(endpoint.valid).encode("utf-16"))
    yield BodyCase("utf8-byte-order-mark", b"\xef\xbb\xbf" + dumps(endpoint.valid))
    for field_name in (*endpoint.strings, *endpoint.choices):
        yield BodyCase(f"nul-in-{field_name}", with_field(endpoint, field_name, b'"a\\u0000b"'))
    yield BodyCase("nul-in-a-key", with_field(endpoint, "na\x00me", b'"x"'))
    yield BodyCase("lone-high-surrogate", with_field(endpoint, name, b'"a\\ud800b"'))
    yield BodyCase("lone-low-surrogate", with_field(endpoint, name, b'"\\udfff"'))
    yield BodyCase("reversed-surrogate-pair", with_field(endpoint, name, b'"\\ude00\\ud83d"'))
    yield BodyCase("lone-surrogate-in-a-key", with_field(endpoint, "\ud800", b'"x"'))


def shape_cases(endpoint: Endpoint) -> Iterator[BodyCase]:
    non_objects = {
        "list": b"[]",
        "list-of-the-valid-body": b"[" + dumps(endpoint.valid) + b"]",
        "string": b'"hello"',
        "number": b"42",
        "null": b"null",
        "true": b"true",
    }
    for case_id, body in non_objects.items():
        yield BodyCase(f"body-is-{case_id}", body, code="invalid")
    for required in endpoint.required:
        rest = {key: value for key, value in endpoint.valid.items() if key != required}
        yield BodyCase(f"missing-{required}", dumps(rest), code="invalid", field=required)
    if endpoint.required:
        yield BodyCase("empty-body", b"", code="invalid", field=endpoint.required[0])
    for unknown in ("colour", "id", "is_superuser", "user"):
        body = dumps({**endpoint.valid, unknown: True})
        yield BodyCase(f"unknown-field-{unknown}", body, code="invalid", field=unknown)


STRING_WRONG_TYPES = {
    "int": b"123", "float": b"1.5", "true": b"true", "false": b"false", "null": b"null",
    "list": b'["acme"]', "empty-list": b"[]", "object": b'{"name": "acme"}',
}  # fmt: skip
CHOICE_WRONG_TYPES = {
    "object": b'{"value": "admin"}', "list": b'["admin"]', "int": b"1", "true": b"true",
    "null": b"null", "unknown-value": b'"superuser"', "upper-case": b'"ADMIN"',
}  # fmt: skip


def value_cases(endpoint: Endpoint) -> Iterator[BodyCase]:
    for name in endpoint.strings:
        for type_id, raw in STRING_WRONG_TYPES.items():
            body = with_field(endpoint, name, raw)
            yield BodyCase(f"{name}-is-{type_id}", body, code="invalid", field=name)
        huge = with_field(endpoint, name, dumps(MEGABYTE))
        yield BodyCase(f"{name}-is-1MB", huge, code="invalid", field=name)
    for name in endpoint.choices:
        for type_id, raw in CHOICE_WRONG_TYPES.items():
            body = with_field(endpoint, name, raw)
            yield BodyCase(f"{name}-is-{type_id}", body, code="invalid", field=name)
    if endpoint.name_field:
        name = endpoint.name_field
        for case_id, odd in ODD_NAMES.items():
            for encoding, ascii_only in (("escaped", True), ("utf8", False)):
                body = with_field(endpoint, name, dumps(odd, ascii_only=ascii_only))
                case = f"{name}-{case_id}-{encoding}"
                yield BodyCase(case, body, code="invalid", field=name)


def transport_cases(endpoint: Endpoint) -> Iterator[BodyCase]:
    valid = dumps(endpoint.valid)
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/xml",
        "application/vnd.api+json",
        "",
    ):
        case_id = "content-type-" + (content_type.split(";")[0].replace("/", "-") or "missing")
        yield BodyCase(case_id, valid, 415, "unsupported_media_type", content_type=content_type)
    over = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1
    yield BodyCase(
        "body-over-upload-limit",
        with_field(endpoint, endpoint.first_field, dumps("x" * over)),
        413,
        "request_too_large",
    )


CASE_FAMILIES = (json_syntax_cases, encoding_cases, shape_cases, value_cases, transport_cases)
BODY_CASES = [
    pytest.param(endpoint, case, id=f"{endpoint.name}-{case.id}")
    for endpoint in ENDPOINTS
    for family in CASE_FAMILIES
    for case in family(endpoint)
]


@pytest.mark.parametrize(("endpoint", "case"), BODY_CASES)
def test_malformed_body_is_refused_and_writes_nothing(
    endpoint: Endpoint, case: BodyCase, cast: Cast
) -> None:
    client = endpoint.client(cast)

    with nothing_written():
        response = send(client, endpoint.method, endpoint.path, case.body, case.content_type)

    error = assert_error(response, case.status, case.code)
    if case.field is not None:
        assert case.field in error["fields"], error


TEXT_CASES = [
    pytest.param(endpoint, sample, ascii_only, id=f"{endpoint.name}-{sample_id}-{encoding}")
    for endpoint in ENDPOINTS
    if endpoint.text_field
    for sample_id, sample in TEXT_SAMPLES.items()
    for encoding, ascii_only in (("escaped", True), ("utf8", False))
]


@pytest.mark.parametrize(("endpoint", "text", "ascii_only"), TEXT_CASES)
def test_free_text_takes_any_unicode_the_database_can_store(
    endpoint: Endpoint, text: str, ascii_only: bool, cast: Cast
) -> None:
    assert endpoint.text_field is not None
    body = dumps({**endpoint.valid, endpoint.text_field: text}, ascii_only=ascii_only)

    response = send(endpoint.client(cast), endpoint.method, endpoint.path, body)

    assert response.status_code == endpoint.success, response.json()
    assert response.json()[endpoint.text_field] == text


# --- charsets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8", "latin-1", "hex", "bz2_codec"])
def test_json_charset_parameter_is_ignored(charset: str, cast: Cast) -> None:
    # RFC 8259: JSON is UTF-8, and a charset parameter "has no effect on compliant recipients".
    body = dumps({"name": "vision", "description": "Caf\u00e9"}, ascii_only=False)

    response = send(cast.alice, "POST", "/api/v1/teams", body, f"{JSON}; charset={charset}")

    assert response.status_code == 201, response.json()
    assert response.json()["description"] == "Caf\u00e9"


# --- query parameters of the list endpoints -----------------------------------------------------


@dataclass(frozen=True)
class ListEndpoint:
    name: str
    path: str
    # Filters are validated (values PostgreSQL cannot hold are refused); every list ignores
    # parameters it does not know, and the paginator reads its own.
    filters: tuple[str, ...] = ()


LIST_ENDPOINTS = (
    ListEndpoint("projects", "/api/v1/projects", filters=("owner", "search")),
    ListEndpoint("teams", "/api/v1/teams"),
    ListEndpoint("tokens", "/api/v1/user/tokens"),
    ListEndpoint("team-members", "/api/v1/teams/acme/members"),
    ListEndpoint("project-members", "/api/v1/projects/alice/mnist/members"),
)


@dataclass(frozen=True)
class QueryCase:
    id: str
    query: str
    status: int = 200
    code: str | None = None
    field: str | None = None


def query_cases(endpoint: ListEndpoint) -> Iterator[QueryCase]:
    for name in endpoint.filters:
        yield QueryCase(f"{name}-nul", f"{name}=a%00b", 400, "invalid", name)
        yield QueryCase(f"{name}-1MB", f"{name}={'x' * 1_000_000}", 400, "invalid", name)
        # Undecodable bytes become U+FFFD while the query string is parsed: harmless text.
        yield QueryCase(f"{name}-utf8-encoded-surrogate", f"{name}=%ED%A0%80")
        yield QueryCase(f"{name}-invalid-utf8", f"{name}=%FF%FE")
        yield QueryCase(f"{name}-emoji", f"{name}=%F0%9F%9A%80")
        yield QueryCase(f"{name}-rtl-override", f"{name}=%E2%80%AEacme")
        yield QueryCase(f"{name}-sql-wildcards", f"{name}=%25_%5C")
    yield QueryCase("unknown-parameter", "colour=blue")  # ignored
    yield QueryCase("page-nul", "page=%00", 404, "not_found")
    yield QueryCase("page-empty", "page=")  # the first page
    yield QueryCase("page-size-nul", "page_size=%00")
    for case_id, page in {
        "word": "abc", "zero": "0", "negative": "-1", "fraction": "1.5", "beyond-the-end": "999",
        "30-digits": "9" * 30, "5000-digits": "9" * 5000, "emoji": "%F0%9F%9A%80",
    }.items():  # fmt: skip
        yield QueryCase(f"page-{case_id}", f"page={page}", 404, "not_found")
    for case_id, size in {
        "word": "abc", "zero": "0", "negative": "-5", "huge": "9" * 30, "5000-digits": "9" * 5000,
        "exponent": "1e9", "emoji": "%F0%9F%9A%80",
    }.items():  # fmt: skip
        # A page size the paginator cannot use falls back to the default; a huge one is capped.
        yield QueryCase(f"page-size-{case_id}", f"page_size={size}")
    too_many = "&".join(
        f"p{index}=1" for index in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)
    )
    yield QueryCase("too-many-parameters", too_many, 400, "bad_request")


QUERY_CASES = [
    pytest.param(endpoint, case, id=f"{endpoint.name}-{case.id}")
    for endpoint in LIST_ENDPOINTS
    for case in query_cases(endpoint)
]


@pytest.mark.parametrize(("endpoint", "case"), QUERY_CASES)
def test_odd_query_parameters_never_fail_the_server(
    endpoint: ListEndpoint, case: QueryCase, cast: Cast
) -> None:
    with nothing_written():
        response = cast.alice.get(f"{endpoint.path}?{case.query}")

    if case.code is None:
        assert response.status_code == 200, response.json()
        assert set(response.json()) == {"count", "next", "previous", "results"}
        return
    error = assert_error(response, case.status, case.code)
    if case.field is not None:
        assert case.field in error["fields"], error


# --- paths --------------------------------------------------------------------------------------

ODD_SEGMENTS = {
    "nul": "%00",
    "nul-after-a-name": "acme%00",
    "newline-after-a-name": "acme%0A",
    "newline-inside-a-name": "ac%0Ame",
    "space": "%20acme",
    "5000-characters": "a" * 5000,
    "u-umlaut": "%C3%BC",
    "emoji": "%F0%9F%9A%80",
    "rtl-override": "%E2%80%AEemca",
    "utf8-encoded-surrogate": "%ED%A0%80",
    "invalid-utf8": "%FF",
    "dot-dot": "..",
    "encoded-dot-dot": "%2e%2e",
    "double-encoded": "%252e",
    "leading-dash": "-acme",
    "quote": "acme'",
}
DETAIL_ROUTES = {
    "user": ("GET", "/api/v1/users/{}", b""),
    "team": ("GET", "/api/v1/teams/{}", b""),
    "team-delete": ("DELETE", "/api/v1/teams/{}", b""),
    "team-update": ("PATCH", "/api/v1/teams/{}", b'{"description": "x"}'),
    "team-member": ("PATCH", "/api/v1/teams/acme/members/{}", b'{"role": "admin"}'),
    "team-member-remove": ("DELETE", "/api/v1/teams/acme/members/{}", b""),
    "project-owner": ("GET", "/api/v1/projects/{}/mnist", b""),
    "project-name": ("GET", "/api/v1/projects/alice/{}", b""),
    "project-delete": ("DELETE", "/api/v1/projects/alice/{}", b""),
    "project-member": ("PATCH", "/api/v1/projects/alice/mnist/members/{}", b'{"role": "admin"}'),
    "token-revoke": ("DELETE", "/api/v1/user/tokens/{}", b""),
}
TOKEN_IDS = {
    "word": "abc", "negative": "-1", "fraction": "1.5", "zero": "0", "17-digits": "9" * 17,
    "19-digits": "9" * 19, "5000-digits": "9" * 5000, "nul": "1%00", "arabic-digits": "%D9%A1",
}  # fmt: skip
PATH_CASES = [
    pytest.param(
        method,
        template.format(segment),
        body,
        id=f"{route}-{segment_id}",
    )
    for route, (method, template, body) in DETAIL_ROUTES.items()
    if route != "token-revoke"
    for segment_id, segment in ODD_SEGMENTS.items()
] + [
    pytest.param("DELETE", f"/api/v1/user/tokens/{token_id}", b"", id=f"token-revoke-{case_id}")
    for case_id, token_id in TOKEN_IDS.items()
]


@pytest.mark.parametrize(("method", "path", "body"), PATH_CASES)
def test_odd_path_segment_answers_json_404(method: str, path: str, body: bytes, cast: Cast) -> None:
    with nothing_written():
        response = send(cast.alice, method, path, body)

    assert_error(response, 404, "not_found")


UNKNOWN_API_PATHS = {
    "unknown-resource": "/api/v1/nope",
    "unknown-version": "/api/v2/teams",
    "unknown-sub-resource": "/api/v1/teams/acme/nope",
    "owner-without-project": "/api/v1/projects/alice",
    "too-deep": "/api/v1/user/tokens/1/extra",
    "version-root": "/api/v1/",
    "version-without-slash": "/api/v1",
    "nul": "/api/%00",
    "double-slash": "/api/v1//teams",
}
UNKNOWN_API_PATH_CASES = [
    *(pytest.param(path, id=case_id) for case_id, path in UNKNOWN_API_PATHS.items()),
    pytest.param("/api", id="api-without-slash"),
    pytest.param("/api/", id="api-root"),
    pytest.param("/api/v1/nope%0A", id="newline-at-the-end"),
]


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("path", UNKNOWN_API_PATH_CASES)
def test_unknown_api_path_answers_json_404(method: str, path: str, cast: Cast) -> None:
    with nothing_written():
        response = send(cast.alice, method, path, b"{}")

    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_unknown_api_path_answers_json_404_even_without_a_csrf_token(
    method: str, cast: Cast
) -> None:
    # A browser-style client: Django's CSRF check must not answer first with an HTML page.
    client = APIClient(enforce_csrf_checks=True)

    response = send(client, method, "/api/v1/nope", b"{}")

    assert_error(response, 404, "not_found")


# --- methods ------------------------------------------------------------------------------------

ROUTES = {
    "signup": ("/api/v1/auth/signup", {"POST"}),
    "login": ("/api/v1/auth/login", {"POST"}),
    "logout": ("/api/v1/auth/logout", {"POST"}),
    "user": ("/api/v1/user", {"GET"}),
    "tokens": ("/api/v1/user/tokens", {"GET", "POST"}),
    "token": ("/api/v1/user/tokens/1", {"DELETE"}),
    "users": ("/api/v1/users/alice", {"GET"}),
    "teams": ("/api/v1/teams", {"GET", "POST"}),
    "team": ("/api/v1/teams/acme", {"GET", "PATCH", "DELETE"}),
    "team-members": ("/api/v1/teams/acme/members", {"GET", "POST"}),
    "team-member": ("/api/v1/teams/acme/members/bob", {"PATCH", "DELETE"}),
    "projects": ("/api/v1/projects", {"GET", "POST"}),
    "project": ("/api/v1/projects/alice/mnist", {"GET", "PATCH", "DELETE"}),
    "project-members": ("/api/v1/projects/alice/mnist/members", {"GET", "POST"}),
    "project-member": ("/api/v1/projects/alice/mnist/members/bob", {"PATCH", "DELETE"}),
}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
METHOD_CASES = [
    pytest.param(path, method, allowed, id=f"{route}-{method}")
    for route, (path, allowed) in ROUTES.items()
    for method in METHODS
    if method not in allowed
]


@pytest.mark.parametrize(("path", "method", "allowed"), METHOD_CASES)
def test_wrong_method_answers_405(path: str, method: str, allowed: set[str], cast: Cast) -> None:
    with nothing_written():
        response = send(cast.alice, method, path, b"{}")

    assert_error(response, 405, "method_not_allowed")
    offered = {name.strip() for name in response["Allow"].split(",")}
    assert allowed <= offered
    assert method not in offered


def test_unacceptable_accept_header_answers_406_in_json(cast: Cast) -> None:
    response = cast.alice.get("/api/v1/teams", HTTP_ACCEPT="text/html")

    assert_error(response, 406, "not_acceptable")


# --- the fixture cast is what the tests above take it for ---------------------------------------


def test_the_cast_is_in_place(cast: Cast) -> None:
    assert Membership.objects.filter(team=cast.team, user__username="bob").exists()
    assert ProjectMember.objects.filter(project=cast.project, user__username="bob").exists()
    assert cast.alice.get("/api/v1/teams/acme/members").json()["count"] == 2
