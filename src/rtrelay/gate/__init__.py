"""rtrelay.gate."""
