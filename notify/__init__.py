"""Notices to the outside world: channels, templates, preferences, the dev mail catcher.

The approval workflow only writes ``notifications`` rows (the outbox). The
dispatcher (``workflows/delivery.py`` + ``activities/delivery.py``) plans one
``deliveries`` row per notice and channel and sends each through a channel here.
Every module in this package is plain asyncio code with no Temporal or database
in it, so each channel can be tested against a real receiver on its own.
"""
