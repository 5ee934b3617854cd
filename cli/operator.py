"""``approvals signal``: an operator acts on a request through Temporal, signed.

A signal sent with the Temporal CLI or UI names an actor nobody vouches for,
so the workflow records it as ``ignored``. This command signs the same signal
with ``APPROVALS_SIGNING_SECRET`` (see :mod:`domain.signing`): the workflow
then accepts it as the named user's action, checks it like any other (the
user must be eligible, the request open), and records the operator's name in
the audit event. Whoever holds the secret can act for anyone: give it to the
API, the worker and the few operators who need it, never to Temporal.
"""

from __future__ import annotations

import argparse
import getpass
import socket
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ValidationError

from cli.errors import CliError
from common.settings import Settings
from common.signer import vouch
from domain.constants import Signals, Updates, workflow_id
from domain.process import (
    AddApproversInput,
    CcInput,
    DecideInput,
    MilestoneInput,
    ReassignInput,
    RevokeInput,
    SendBackInput,
    TransferInput,
    UrgeInput,
    WithdrawInput,
)

# action -> (signal, the update name the proof is signed for)
_NAMES = {
    "decide": (Signals.DECIDE, Updates.DECIDE),
    "withdraw": (Signals.WITHDRAW, Updates.WITHDRAW),
    "transfer": (Signals.TRANSFER, Updates.TRANSFER),
    "milestone": (Signals.RECORD_MILESTONE, Updates.RECORD_MILESTONE),
    "send-back": (Signals.SEND_BACK, Updates.SEND_BACK),
    "add-approvers": (Signals.ADD_APPROVERS, Updates.ADD_APPROVERS),
    "cc": (Signals.ADD_CC, Updates.ADD_CC),
    "revoke": (Signals.REVOKE, Updates.REVOKE),
    "urge": (Signals.URGE, Updates.URGE),
    "reassign": (Signals.REASSIGN, Updates.REASSIGN),
}


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "signal",
        help="act on a request as an operator: a signed signal the workflow believes",
        description=(
            "Send a request's workflow a signed signal acting as USER. The workflow checks it "
            "like an API call (eligibility, state) and records the operator in the audit trail; "
            "an unsigned signal is recorded as ignored."
        ),
    )
    p.add_argument("request_id")
    p.add_argument("action", choices=sorted(_NAMES))
    p.add_argument("--as", dest="actor", required=True, metavar="USER", help="who acts")
    p.add_argument(
        "--decision", choices=["approve", "reject", "return"], help="for `decide` (required)"
    )
    p.add_argument(
        "--to", dest="to_user", metavar="USER", help="for `transfer` and `reassign` (required)"
    )
    p.add_argument(
        "--from", dest="from_user", metavar="USER", help="for `reassign`: who holds the step"
    )
    p.add_argument("--milestone", help="for `milestone` (required), e.g. deposit")
    p.add_argument("--amount", help="for `milestone`: the payment, a decimal")
    p.add_argument("--reference", default="", help="for `milestone`: e.g. the bank reference")
    p.add_argument(
        "--stage",
        help="for `send-back` (required): a passed stage's key or index (from 0), or requester",
    )
    p.add_argument("--people", metavar="USER,USER", help="for `add-approvers` and `cc` (required)")
    p.add_argument(
        "--position", choices=["before", "after", "alongside"], help="for `add-approvers`"
    )
    p.add_argument(
        "--mode", choices=["all", "any", "in_turn"], default="all", help="for `add-approvers`"
    )
    p.add_argument(
        "--comment",
        help="why (required for `send-back`, `add-approvers`, `revoke` and `reassign`)",
    )
    p.add_argument(
        "--admin", action="store_true", help="for `revoke`: USER revokes as an administrator"
    )
    p.add_argument(
        "--operator",
        default=None,
        help="who you are, for the audit trail (default: your login@host)",
    )
    return p


def build_message(args: argparse.Namespace) -> BaseModel:
    """The signal's payload from the command line, validated as the API validates it."""
    try:
        if args.action == "decide":
            if not args.decision:
                raise CliError("decide needs --decision approve|reject|return")
            return DecideInput(actor=args.actor, action=args.decision, comment=args.comment)
        if args.action == "withdraw":
            return WithdrawInput(actor=args.actor, comment=args.comment)
        if args.action == "revoke":
            if not args.comment:
                raise CliError("revoke needs --comment REASON")
            return RevokeInput(actor=args.actor, comment=args.comment, as_admin=args.admin)
        if args.action == "urge":
            return UrgeInput(actor=args.actor, comment=args.comment)
        if args.action == "reassign":
            if not (args.from_user and args.to_user and args.comment):
                raise CliError("reassign needs --from USER --to USER --comment REASON")
            return ReassignInput(
                actor=args.actor,
                from_user=args.from_user,
                to_user=args.to_user,
                comment=args.comment,
            )
        if args.action == "transfer":
            if not args.to_user:
                raise CliError("transfer needs --to USER")
            return TransferInput(actor=args.actor, to_user=args.to_user, comment=args.comment)
        if args.action == "send-back":
            if not args.stage:
                raise CliError("send-back needs --stage KEY|INDEX|requester and --comment")
            stage: str | int = int(args.stage) if args.stage.isdigit() else args.stage
            return SendBackInput(actor=args.actor, to_stage=stage, comment=args.comment)
        if args.action in ("add-approvers", "cc"):
            people = [u.strip() for u in (args.people or "").split(",") if u.strip()]
            if not people:
                raise CliError(f"{args.action} needs --people USER[,USER...]")
            if args.action == "cc":
                return CcInput(actor=args.actor, people=people, comment=args.comment)
            if not args.position:
                raise CliError("add-approvers needs --position before|after|alongside")
            return AddApproversInput.model_validate(
                {
                    "actor": args.actor,
                    "people": people,
                    "position": args.position,
                    "mode": args.mode,
                    "comment": args.comment,
                }
            )
        if not args.milestone:
            raise CliError("milestone needs --milestone NAME")
        amount = Decimal(args.amount) if args.amount is not None else None
        return MilestoneInput(
            actor=args.actor,
            milestone=args.milestone,
            amount=amount,
            reference=args.reference,
            comment=args.comment,
        )
    except (ValidationError, InvalidOperation) as exc:
        raise CliError(f"invalid signal: {exc}".splitlines()[0]) from exc


def operator_name(given: str | None) -> str:
    return given or f"{getpass.getuser()}@{socket.gethostname()}"


async def send(settings: Settings, args: argparse.Namespace) -> str:
    """Sign and send the signal; the workflow id it went to."""
    from temporalio.service import RPCError, RPCStatusCode

    from common.temporal import connect

    signal_name, update_name = _NAMES[args.action]
    message = vouch(
        build_message(args),
        settings.signing_secret,
        args.request_id,
        update_name,
        by="operator",
        operator=operator_name(args.operator),
    )
    client = await connect(settings)
    handle = client.get_workflow_handle(workflow_id(args.request_id))
    try:
        await handle.signal(signal_name, message)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"request {args.request_id} has no running workflow") from exc
        raise CliError(f"Temporal refused the signal: {exc.message}") from exc
    return handle.id
