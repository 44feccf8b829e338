"""rtrelay.bench."""
