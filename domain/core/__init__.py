"""The approval process's rules as pure functions of its state (no Temporal, no I/O, no clock).

The workflow (``workflows/approval.py``) feeds them the state and carries out
what they decide. Moving a rule here keeps the workflow's commands unchanged,
which the stored histories (``tests/histories``) prove on every test run.
"""
