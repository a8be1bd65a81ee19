import pytest

from linli.core.i18n import gettext, negotiate


@pytest.mark.parametrize(
    ("accept", "cookie", "expected"),
    [
        ("zh-CN", None, "zh_CN"),
        ("zh-CN,zh;q=0.9,en;q=0.8", None, "zh_CN"),
        ("zh-TW", None, "zh_CN"),
        ("en-US,en;q=0.9", None, "en"),
        ("fr-FR,en;q=0.5", None, "en"),
        ("fr-FR", None, "zh_CN"),
        ("en;q=0,zh;q=0.5", None, "zh_CN"),
        ("en;q=garbage", None, "zh_CN"),
        (None, None, "zh_CN"),
        ("zh-CN", "en", "en"),
        ("en", "zh-CN", "zh_CN"),
    ],
)
def test_negotiate(accept: str | None, cookie: str | None, expected: str) -> None:
    assert negotiate(accept, cookie) == expected


def test_problem_titles_are_translated() -> None:
    assert gettext("Sign-in is required.", "en") == "Sign-in is required."
    assert gettext("Sign-in is required.", "zh_CN") != "Sign-in is required."
