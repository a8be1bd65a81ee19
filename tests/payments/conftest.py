"""Browser fixtures (Debian chromium through Playwright) for the payment pages' tests."""

from tests.e2e.conftest import browser, chromium_path  # noqa: F401  (fixtures)
