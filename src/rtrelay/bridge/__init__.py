"""rtrelay.bridge."""
