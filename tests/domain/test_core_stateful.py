"""Random sequences of escalations, hand-overs and decisions keep the step's invariants.

A hypothesis state machine over the pure rules of ``domain/core`` (no server): whatever
order people escalate, leave and decide in, the requester never holds the step, a
person decides at most once, and only someone holding an undecided slot is let in.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.core import admission, escalation
from domain.core.queries import active_stage, current_approvers, stage_complete
from domain.errors import DomainError, ErrorCode
from domain.process import DecideInput, Slot, StageMode, StageStatus

from .test_core import POLICIES, T0, in_review

PEOPLE = ["am_li", "bcd_zheng", "dsd_liu", "sd_chen", "gm_wang", "sh_zhou", "om_wu"]
REQUESTER = "am_li"
people = st.sampled_from(PEOPLE)


class StepMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.view = in_review(["bcd_zheng"], reply_due=T0 + timedelta(hours=4))
        self.policy = POLICIES["big_customer_contract"]
        self.decided: set[str] = set()
        self.now = T0

    def _waiting(self) -> list[Slot]:
        stage = active_stage(self.view)
        assert stage is not None
        return [s for s in stage.slots if s.decision is None]

    def _open(self) -> bool:
        return active_stage(self.view) is not None

    @precondition(_open)
    @rule(up=st.dictionaries(people, st.lists(people, max_size=3), max_size=4))
    def escalate(self, up: dict[str, list[str]]) -> None:
        self.now += timedelta(hours=4)
        escalation.escalate(self._waiting(), up, REQUESTER, self.now)

    @precondition(_open)
    @rule(
        gone=st.sets(people, max_size=2),
        up=st.dictionaries(people, st.lists(people, max_size=2)),
    )
    def someone_leaves(self, gone: set[str], up: dict[str, list[str]]) -> None:
        escalation.hand_over(self._waiting(), gone, up, REQUESTER, self.now)

    @rule(actor=people)
    def decide(self, actor: str) -> None:
        msg = DecideInput(actor=actor, action="approve")
        stage = active_stage(self.view)
        if stage is None:  # the step is closed: nobody gets in any more
            try:
                admission.check(self.view, self.policy, False, msg)
            except DomainError as err:
                assert err.code is ErrorCode.INVALID_STATE
                return
            raise AssertionError("a closed step let a decision in")
        eligible = any(s.decision is None and s.may_act(actor) for s in stage.slots)
        try:
            admission.check(self.view, self.policy, False, msg)
        except DomainError as err:
            assert not eligible
            again = actor in self.decided
            assert err.code is (ErrorCode.ALREADY_DECIDED if again else ErrorCode.NOT_ELIGIBLE)
            return
        assert eligible and actor not in self.decided and actor != REQUESTER
        for slot in stage.slots:
            if slot.decision is None and slot.may_act(actor):
                slot.decision, slot.decided_by, slot.decided_at = "approve", actor, self.now
        self.decided.add(actor)
        if stage_complete(stage):
            stage.status = StageStatus.APPROVED
            self.view.stage_index = None

    @invariant()
    def the_requester_never_holds_the_step(self) -> None:
        for stage in self.view.stages:
            for slot in stage.slots:
                assert all(a.user != REQUESTER for a in slot.actors)

    @invariant()
    def current_approvers_are_holders_of_undecided_slots(self) -> None:
        stage = active_stage(self.view)
        if stage is None:
            assert current_approvers(self.view) == []
            return
        holders = {a.user for s in stage.slots if s.decision is None for a in s.actors}
        assert set(current_approvers(self.view)) == holders

    @invariant()
    def an_any_stage_closes_on_its_first_approval(self) -> None:
        stage = self.view.stages[0]
        approvals = [s for s in stage.slots if s.decision == "approve"]
        if stage.mode is StageMode.ANY:
            assert len(approvals) <= 1


StepMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=25, deadline=None)
test_a_step_keeps_its_invariants = StepMachine.TestCase
