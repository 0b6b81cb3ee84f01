"""OBS Studio at the court: two supervised obs-websocket connections, the replay triggers, the player."""
