"""rtrelay.mock."""
