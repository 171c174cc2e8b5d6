"""Preference data: feedback into pairs, ratings, exports and routing policy (pure Python)."""
