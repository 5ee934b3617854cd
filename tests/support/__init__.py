"""Helpers the tests share, imported by the tests that need them.

Fixtures stay in each folder's ``conftest.py``; everything else a test imports lives
here, one module per area (``api``, ``workflows``, ``notify``, ``cli``, ``policies``,
``browser``), plus the pure driver of the core (``machine_driver``), the receivers
that stand in for mail and webhook servers (``receivers``), hypothesis strategies
and the stored-history helpers.
"""
