"""Environments: the images jobs run in, which site admins register, change and retire.

Every change to ``Environment`` rows goes through these functions. Exactly one environment is
the default (what a job without ``env`` runs in): ``_make_default`` is the only code that moves
the flag, under a lock on every row, and a partial unique index backs it up.
"""

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from accounts.models import User
from accounts.policy import authorize_site_admin
from core.errors import Conflict, NotFound, ValidationFailed
from core.names import validate_name
from jobs.models import Environment

NAME_MAX_LENGTH = 64
IMAGE_MAX_LENGTH = 255
ADMIN_ACTION = "register, change or delete environments"
IMAGE_FORMAT = "[REGISTRY[:PORT]/]REPOSITORY[:TAG][@sha256:DIGEST]"
IMAGE_EXAMPLE = "ferry/python:3.11 or registry.example.com:5000/team/train:v2"

# Docker's reference grammar (distribution/reference): a repository path is lowercase
# components joined by "/", each alphanumeric runs joined by ".", "_", "__" or dashes.
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
    r"(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*(?::[0-9]+)?\Z"
)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}\Z")


@dataclass(frozen=True)
class EnvironmentChanges:
    """What a PATCH may change; None leaves a value as it is."""

    image: str | None = None
    gpu_image: str | None = None
    description: str | None = None
    default: bool | None = None


def environment_get(name: str) -> Environment:
    found = Environment.objects.filter(name=name).first()
    if found is None:
        known = ", ".join(Environment.objects.order_by("name").values_list("name", flat=True))
        raise NotFound(f"No environment {name!r} here; there are: {known or 'none'}.")
    return found


def environment_create(
    *,
    actor: User,
    name: str,
    image: str,
    gpu_image: str = "",
    description: str = "",
    default: bool = False,
) -> Environment:
    """Register an image under ``name``. The first environment, or one asked to be, becomes the
    default."""
    authorize_site_admin(actor, ADMIN_ACTION)
    _check_name(name)
    environment = Environment(
        name=name,
        image=check_image(image, "image"),
        gpu_image=_gpu_image(gpu_image),
        description=description,
    )
    similar = Environment.objects.filter(name__iexact=name).first()
    if similar is not None:
        raise _name_taken(similar.name)
    try:
        with transaction.atomic():
            environment.save()
            if default or not Environment.objects.filter(is_default=True).exists():
                _make_default(environment)
    except IntegrityError as exc:  # the same name registered at the same moment
        raise _name_taken(name) from exc
    return environment


def environment_update(*, actor: User, name: str, changes: EnvironmentChanges) -> Environment:
    authorize_site_admin(actor, ADMIN_ACTION)
    environment = environment_get(name)
    if changes.image is not None:
        environment.image = check_image(changes.image, "image")
    if changes.gpu_image is not None:
        environment.gpu_image = _gpu_image(changes.gpu_image)
    if changes.description is not None:
        environment.description = changes.description
    if changes.default is False and environment.is_default:
        raise ValidationFailed(
            f"{name} is the default environment: jobs that name none run in it. Make another "
            "environment the default instead (PATCH it with default: true).",
            fields={"default": ["The default can only move to another environment."]},
            code="default_required",
        )
    with transaction.atomic():
        environment.save(update_fields=["image", "gpu_image", "description"])
        if changes.default:
            _make_default(environment)
    return environment


def environment_delete(*, actor: User, name: str) -> None:
    """Delete an environment no job has used; jobs keep theirs for as long as they exist."""
    authorize_site_admin(actor, ADMIN_ACTION)
    environment = environment_get(name)
    if environment.is_default:
        raise Conflict(
            f"{name} is the default environment; make another one the default first.",
            code="environment_is_default",
        )
    if environment.jobs.exists():
        raise _in_use(environment)
    try:
        environment.delete()
    except ProtectedError as exc:  # a job was submitted with it just now
        raise _in_use(environment) from exc


def _in_use(environment: Environment) -> Conflict:
    used = environment.jobs.count()
    return Conflict(
        f"{environment.name} cannot be deleted: {used} job(s) ran in it, and each keeps its "
        "environment for as long as the job exists. Change its image instead.",
        code="environment_in_use",
    )


def _make_default(environment: Environment) -> None:
    """The one writer of ``is_default``: call inside a transaction."""
    # Lock every row, not only the current default: two admins moving the default at once
    # would otherwise each clear the old one and set their own, leaving two.
    list(Environment.objects.select_for_update().order_by("id").values_list("id", flat=True))
    Environment.objects.exclude(id=environment.id).filter(is_default=True).update(is_default=False)
    Environment.objects.filter(id=environment.id).update(is_default=True)
    environment.is_default = True


def _check_name(name: str) -> None:
    try:
        validate_name(name, NAME_MAX_LENGTH)
    except ValidationError as exc:
        raise ValidationFailed(
            f"{name!r} is not a valid environment name. {exc.messages[0]}",
            fields={"name": list(exc.messages)},
            code="invalid_name",
        ) from exc


def _name_taken(name: str) -> Conflict:
    return Conflict(
        f"An environment named {name} exists already; choose another name, or change that one "
        f"(PATCH /api/v1/environments/{name}).",
        fields={"name": ["An environment with this name exists."]},
        code="environment_exists",
    )


def check_image(reference: str, field: str) -> str:
    """``reference`` if it is an image reference Docker accepts; else a ValidationFailed
    naming ``field`` and saying what is wrong with it."""
    problem = image_problem(reference)
    if problem is not None:
        raise ValidationFailed(
            f"{field}: {reference!r} is not an image reference. {problem}",
            fields={field: [problem]},
            code="invalid_image",
        )
    return reference


def _gpu_image(reference: str) -> str:
    return check_image(reference, "gpu_image") if reference else ""  # empty: the CPU image


def image_problem(reference: str) -> str | None:
    """What is wrong with an image reference, or None if Docker would accept it."""
    if not reference:
        return f"Give an image, e.g. {IMAGE_EXAMPLE}."
    if any(char.isspace() for char in reference):
        return f"An image reference has no spaces; write {IMAGE_FORMAT}."
    if len(reference) > IMAGE_MAX_LENGTH:
        return f"Use at most {IMAGE_MAX_LENGTH} characters."
    rest, _, digest = reference.partition("@")
    if "@" in reference and not _DIGEST.match(digest):
        return "A digest is 'sha256:' and 64 lowercase hex digits, after a single '@'."
    name, tag = _split_tag(rest)
    if tag is not None and not _TAG.match(tag):
        return (
            f"The tag {tag!r} must be 1-128 letters, digits, '_', '.' and '-', not starting "
            "with '.' or '-'."
        )
    return _name_problem(name)


def _split_tag(reference: str) -> tuple[str, str | None]:
    # A ":" before the last "/" is a registry's port (localhost:5000/x), not a tag.
    head, slash, last = reference.rpartition("/")
    if ":" not in last:
        return reference, None
    last, _, tag = last.partition(":")
    return head + slash + last, tag


def _name_problem(name: str) -> str | None:
    components = name.split("/")
    first = components[0]
    # As Docker reads it: a first part with a "." or ":" (or localhost) names a registry.
    if len(components) > 1 and ("." in first or ":" in first or first == "localhost"):
        if not _DOMAIN.match(first):
            return f"The registry {first!r} is not a host name with an optional :PORT."
        components = components[1:]
    for component in components:
        if _PATH_COMPONENT.match(component):
            continue
        if _PATH_COMPONENT.match(component.lower()):
            return (
                f"Repository names are lowercase: write {component.lower()!r}, not {component!r}."
            )
        return (
            f"{component!r} is not a repository name: use lowercase letters and digits, "
            f"joined by '.', '_' or '-'; write {IMAGE_FORMAT}, e.g. {IMAGE_EXAMPLE}."
        )
    return None
