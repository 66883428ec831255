"""Analytics assets: the analytics team's questions answered as warehouse tables."""

ANALYTICS_ASSETS: list = []
ANALYTICS_CHECKS: list = []
