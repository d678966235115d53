"""Driving Chromium through Playwright: the warm browser per worker, the episode's pages, the desktop actions
and the observations."""
