"""`specedit bench`: speed-up against greedy and prompt lookup on real edits, with a lower bound."""
