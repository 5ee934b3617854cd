"""Names shared by the workflow, the worker and the API.

Temporal identifies workflows, activities and messages by these strings, so they
are fixed here once and never derived from Python names: a rename in code must
never break a running request.
"""

from typing import Final

TASK_QUEUE: Final = "approvals"
WORKFLOW_NAME: Final = "ApprovalWorkflow"
RECONCILE_WORKFLOW_NAME: Final = "ReconcileWorkflow"
RECONCILE_SCHEDULE_ID: Final = "approvals-reconcile"
"""The Temporal Schedule that runs :data:`RECONCILE_WORKFLOW_NAME` every minute."""


def workflow_id(request_id: str) -> str:
    """The Temporal workflow id of one request."""
    return f"approval-{request_id}"


class Updates:
    DECIDE: Final = "decide"
    RESUBMIT: Final = "resubmit"
    WITHDRAW: Final = "withdraw"
    TRANSFER: Final = "transfer"
    RECORD_MILESTONE: Final = "record_milestone"
    READY: Final = "ready"
    SEND_BACK: Final = "send_back"
    ADD_APPROVERS: Final = "add_approvers"
    ADD_CC: Final = "add_cc"
    REVOKE: Final = "revoke"
    URGE: Final = "urge"
    REASSIGN: Final = "reassign"
    COMMENT: Final = "comment"


class Signals:
    DECIDE: Final = "decide_signal"
    RESUBMIT: Final = "resubmit_signal"
    WITHDRAW: Final = "withdraw_signal"
    TRANSFER: Final = "transfer_signal"
    RECORD_MILESTONE: Final = "record_milestone_signal"
    DIRECTORY_CHANGED: Final = "directory_changed"
    SEND_BACK: Final = "send_back_signal"
    ADD_APPROVERS: Final = "add_approvers_signal"
    ADD_CC: Final = "add_cc_signal"
    REVOKE: Final = "revoke_signal"
    URGE: Final = "urge_signal"
    REASSIGN: Final = "reassign_signal"
    COMMENT: Final = "comment_signal"


class Queries:
    STATE: Final = "state"


class Activities:
    RECORD_TRANSITION: Final = "record_transition"
    RECORD_TRANSITIONS: Final = "record_transitions"
    RESOLVE_ASSIGNEES: Final = "resolve_assignees"
    RESOLVE_ESCALATION: Final = "resolve_escalation"
    EXECUTE_PAYOUT: Final = "execute_payout"
    VERIFY_PROOF: Final = "verify_proof"
    MARK_STUCK: Final = "mark_stuck"
    INACTIVE_USERS: Final = "inactive_users"
    RECONCILE_CLOSED: Final = "reconcile_closed_requests"
    DUE_AT: Final = "due_at"
    ADDABLE_PEOPLE: Final = "addable_people"
    ACTIVE_DELEGATES: Final = "active_delegates"
    READERS: Final = "readers"
