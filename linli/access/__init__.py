"""Access control (门禁): devices, credentials, visitors (访客通行证), vehicle gates, events."""
