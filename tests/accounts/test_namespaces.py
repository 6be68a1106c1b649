"""Users and teams share one namespace, even when they claim a name at the same moment."""

from functools import partial

import pytest

from accounts.models import Team, User
from accounts.services import team_create, user_create
from tests.factories import UserFactory
from tests.support.concurrency import at_once


@pytest.mark.django_db(transaction=True)  # the threads must see each other's commits
def test_a_user_and_a_team_racing_for_one_name_cannot_both_get_it(postgres: None) -> None:
    creator = UserFactory.create(username="creator")
    outcomes: list[str] = []
    for round_ in range(10):
        name = f"contested{round_}"
        sign_up = partial(user_create, username=name, email="", password="a long pass phrase")
        found_team = partial(team_create, creator=creator, name=name.upper())

        outcomes += at_once(sign_up, found_team)

        holders = User.objects.filter(username__iexact=name).count()
        holders += Team.objects.filter(name__iexact=name).count()
        assert holders == 1, outcomes
    assert sorted(set(outcomes)) == ["name_taken", "ok"]
    assert outcomes.count("ok") == 10
