"""The court operator's local page and API: OBS state, the match, the last events, a big REPLAY button."""
