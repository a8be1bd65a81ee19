"""Announcements (公告) to communities, buildings or houses, with approval and read receipts."""
