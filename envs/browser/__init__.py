"""Driving Chromium through Playwright: the warm browser per worker, the episode's page, its actions and observations."""
