"""rtrelay.ledger."""
