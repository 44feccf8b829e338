"""rtrelay.cli."""
