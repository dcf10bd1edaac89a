"""Everything that replaces or reaches into pygls, in one place (the index comes next)."""
