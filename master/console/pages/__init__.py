"""One module per page; each has ``register(ctx)`` that adds its route to NiceGUI."""
