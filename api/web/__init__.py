"""The web inbox: one self-contained page that drives the v1 API with the user's token."""
