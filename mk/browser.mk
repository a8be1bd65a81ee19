# Browser for the Playwright tests (tests/e2e): Debian's chromium plus CJK fonts.
# Included by the Makefile (`include mk/browser.mk`). Playwright's own browser
# download is never used: the tests drive /usr/bin/chromium.

CHROMIUM ?= /usr/bin/chromium

.PHONY: browser
browser: ## install Debian chromium + fonts-noto-cjk for the browser tests (root, apt-get)
	@if [ -x "$(CHROMIUM)" ]; then \
		echo "browser: $(CHROMIUM) is installed"; \
	elif [ "$$(id -u)" != "0" ]; then \
		echo "browser: $(CHROMIUM) is missing and installing it needs root;"; \
		echo "browser: run 'sudo apt-get install chromium fonts-noto-cjk' (browser tests skip until then; with CI=true they fail)"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "browser: $(CHROMIUM) is missing and this system has no apt-get;"; \
		echo "browser: install chromium and a CJK font by hand (browser tests skip until then; with CI=true they fail)"; \
	else \
		echo "browser: installing chromium and fonts-noto-cjk with apt-get"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-noto-cjk; \
	fi
