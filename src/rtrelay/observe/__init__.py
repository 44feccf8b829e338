"""rtrelay.observe: metrics."""
