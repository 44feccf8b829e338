"""rtrelay.edge."""
