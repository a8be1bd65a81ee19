"""Notifications: portal messages, SMS and WeChat template messages, preferences, delivery log."""
