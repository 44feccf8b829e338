"""rtrelay.route."""
