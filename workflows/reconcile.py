"""ReconcileWorkflow: one reconciliation pass, started every minute by a Temporal Schedule.

The work is all in the activity (visibility queries and database writes are
side effects); the workflow exists so that the pass runs on Temporal's clock,
shows up in the Temporal UI with its result, and is retried like everything else.
The schedule skips a tick while the previous pass is still running.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.constants import RECONCILE_WORKFLOW_NAME, Activities
    from domain.reconcile import ReconcileInput, ReconcileOutput

PASS_TIMEOUT = timedelta(minutes=5)
_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)


@workflow.defn(name=RECONCILE_WORKFLOW_NAME)
class ReconcileWorkflow:
    @workflow.run
    async def run(self, input: ReconcileInput) -> ReconcileOutput:
        result: ReconcileOutput = await workflow.execute_activity(
            Activities.RECONCILE_CLOSED,
            input,
            result_type=ReconcileOutput,
            start_to_close_timeout=PASS_TIMEOUT,
            retry_policy=_RETRY,
            summary="record requests whose workflow was ended outside the process",
        )
        named = ", ".join(r.request_id for r in result.reconciled)
        more = result.recorded - len(result.reconciled)
        workflow.set_current_details(
            f"examined {result.examined} workflow(s) ended outside the process; "
            f"recorded {result.recorded} request(s) as terminated"
            + (f": {named}" if named else "")
            + (f" and {more} more" if more > 0 else "")
        )
        return result
