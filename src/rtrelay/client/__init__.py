"""rtrelay.client."""
