"""Signing up and signing in through the UI's forms."""

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from tests.e2e.ui.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_sign_up_then_sign_out_and_back_in(page: Page, transactional_db: None) -> None:
    page.goto("/")
    expect(page).to_have_url("/login")  # anonymous: sent to sign in
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Email").fill("bob@example.com")
    page.get_by_label("Password").fill("a long enough passphrase 42")
    page.get_by_role("button", name="Create account").click()

    expect(page.get_by_role("navigation")).to_contain_text("bob")
    assert User.objects.filter(username="bob", email="bob@example.com").exists()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url("/login")
    sign_in(page, "bob", "a long enough passphrase 42")
    expect(page.get_by_role("navigation")).to_contain_text("bob")


def test_a_wrong_password_says_so_and_stays(page: Page, alice: User) -> None:
    page.goto("/login")
    page.get_by_label("Username or email").fill("alice")
    page.get_by_label("Password").fill("not her password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    expect(page).to_have_url("/login")


def test_a_page_asked_for_anonymously_opens_after_sign_in(page: Page, alice: User) -> None:
    page.goto("/settings/tokens")
    expect(page).to_have_url("/login?next=%2Fsettings%2Ftokens")
    page.get_by_label("Username or email").fill("alice")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url("/settings/tokens")
