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
from domain.core.steps import put, with_slots, with_stage
from domain.errors import DomainError, ErrorCode
from domain.process import DecideInput, Slot, StageMode, StageStatus
from tests.support.examples import examples

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

    def _waiting(self) -> dict[int, Slot]:
        stage = active_stage(self.view)
        assert stage is not None
        return {i: s for i, s in enumerate(stage.slots) if s.decision is None}

    def _replace(self, waiting: dict[int, Slot], slots: list[Slot]) -> None:
        stage = active_stage(self.view)
        assert stage is not None
        changed = dict(zip(waiting, slots, strict=True))
        self.view = with_stage(self.view, with_slots(stage, changed))

    def _open(self) -> bool:
        return active_stage(self.view) is not None

    @precondition(_open)
    @rule(up=st.dictionaries(people, st.lists(people, max_size=3), max_size=4))
    def escalate(self, up: dict[str, list[str]]) -> None:
        self.now += timedelta(hours=4)
        waiting = self._waiting()
        slots, _ = escalation.escalate(list(waiting.values()), up, REQUESTER, self.now)
        self._replace(waiting, slots)

    @precondition(_open)
    @rule(
        gone=st.sets(people, max_size=2),
        up=st.dictionaries(people, st.lists(people, max_size=2)),
    )
    def someone_leaves(self, gone: set[str], up: dict[str, list[str]]) -> None:
        waiting = self._waiting()
        slots, _ = escalation.hand_over(list(waiting.values()), gone, up, REQUESTER, self.now)
        self._replace(waiting, slots)

    @rule(actor=people)
    def decide(self, actor: str) -> None:
        msg = DecideInput(actor=actor, action="approve")
        stage = active_stage(self.view)
        if stage is None:  # the step is closed: nobody gets in any more
            try:
                admission.check(self.view, self.policy, msg)
            except DomainError as err:
                assert err.code is ErrorCode.INVALID_STATE
                return
            raise AssertionError("a closed step let a decision in")
        eligible = any(s.decision is None and s.may_act(actor) for s in stage.slots)
        try:
            admission.check(self.view, self.policy, msg)
        except DomainError as err:
            assert not eligible
            again = actor in self.decided
            assert err.code is (ErrorCode.ALREADY_DECIDED if again else ErrorCode.NOT_ELIGIBLE)
            return
        assert eligible and actor not in self.decided and actor != REQUESTER
        decided = {
            i: put(slot, decision="approve", decided_by=actor, decided_at=self.now)
            for i, slot in enumerate(stage.slots)
            if slot.decision is None and slot.may_act(actor)
        }
        stage = with_slots(stage, decided)
        self.decided.add(actor)
        if stage_complete(stage):
            self.view = put(
                with_stage(self.view, put(stage, status=StageStatus.APPROVED)), stage_index=None
            )
        else:
            self.view = with_stage(self.view, stage)

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


StepMachine.TestCase.settings = settings(
    max_examples=examples(150), stateful_step_count=25, deadline=None
)
test_a_step_keeps_its_invariants = StepMachine.TestCase
