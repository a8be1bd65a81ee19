"""Open platform (开放平台): partners, apps, installations, OAuth, webhooks, the access log."""
