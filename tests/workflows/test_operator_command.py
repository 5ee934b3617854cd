"""``approvals signal``: an operator's signed command acts; the same without the secret does not."""

from __future__ import annotations

import argparse
import asyncio
import uuid

import pytest
from temporalio.testing import WorkflowEnvironment

from cli.errors import CliError
from cli.operator import add_parser, build_message
from domain.policy import Policy
from domain.process import ReassignInput, RevokeInput, UrgeInput
from tests.support.cli import run_cli
from tests.support.workflows import (
    audit_kinds,
    contract_at_first_stage,
    eventually,
    request_id,
    state,
)


async def test_a_signed_operator_command_acts_and_a_wrong_secret_is_ignored(
    temporal_local: WorkflowEnvironment, local_queue: str, policies: dict[str, Policy], db_sessions
):
    h = await contract_at_first_stage(temporal_local.client, local_queue, policies, "HT-OPS")
    rid = request_id(h)
    target = temporal_local.client.service_client.config.target_host
    args = ("signal", rid, "decide", "--as", "bcd_zheng", "--decision", "approve")

    forged = await asyncio.to_thread(
        run_cli,
        *args,
        "--operator",
        "mallory",
        env={"TEMPORAL_ADDRESS": target, "APPROVALS_SIGNING_SECRET": "x" * 40},
    )
    assert forged.returncode == 0, forged.stderr  # Temporal took it; the workflow did not

    async def ignored() -> bool:
        return "ignored" in await audit_kinds(db_sessions, rid)

    await eventually(ignored, 30)
    assert (await state(h)).stage_index == 0

    sent = await asyncio.to_thread(
        run_cli,
        *args,
        "--operator",
        "ops_zhang",
        "--comment",
        "approved by phone",
        env={"TEMPORAL_ADDRESS": target},
    )
    assert sent.returncode == 0, sent.stderr
    assert f"sent to approval-{rid} as bcd_zheng" in sent.stdout

    async def moved_on() -> bool:
        return (await state(h)).stage_index == 1

    await eventually(moved_on, 30)
    approved = next(e for e in (await state(h)).history if e.kind == "approved")
    assert (approved.actor, approved.data["operator"], approved.comment) == (
        "bcd_zheng",
        "ops_zhang",
        "approved by phone",
    )


def test_signal_to_an_unknown_request_is_one_line_and_exit_1(
    temporal_local: WorkflowEnvironment,
) -> None:
    target = temporal_local.client.service_client.config.target_host
    missing = str(uuid.uuid4())
    result = run_cli(
        "signal", missing, "withdraw", "--as", "am_li", env={"TEMPORAL_ADDRESS": target}
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert f"request {missing} has no running workflow" in last
    bad = run_cli("signal", missing, "decide", "--as", "am_li", env={"TEMPORAL_ADDRESS": target})
    assert bad.returncode == 1 and "--decision" in bad.stderr.strip().splitlines()[-1]


def test_signal_when_temporal_is_down_is_one_line_and_exit_1(free_port: int) -> None:
    result = run_cli(
        "signal",
        str(uuid.uuid4()),
        "withdraw",
        "--as",
        "am_li",
        env={"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port}"},
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert f"Temporal is not reachable at 127.0.0.1:{free_port}" in last


def test_a_revoke_by_command_needs_a_reason_and_may_act_as_an_administrator() -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["signal", "r-1", "revoke", "--as", "admin", "--admin", "--comment", "by phone"]
    )
    msg = build_message(args)
    assert isinstance(msg, RevokeInput)
    assert (msg.actor, msg.comment, msg.as_admin) == ("admin", "by phone", True)
    with pytest.raises(CliError, match="revoke needs --comment"):
        build_message(parser.parse_args(["signal", "r-1", "revoke", "--as", "am_li"]))


def test_an_urge_and_a_reassignment_by_command() -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    urge = build_message(parser.parse_args(["signal", "r-1", "urge", "--as", "am_li"]))
    assert isinstance(urge, UrgeInput) and urge.actor == "am_li"
    args = ["signal", "r-1", "reassign", "--as", "admin", "--from", "bcd_zheng", "--to"]
    move = build_message(parser.parse_args([*args, "price_lin", "--comment", "on leave"]))
    assert isinstance(move, ReassignInput)
    assert (move.from_user, move.to_user, move.comment) == ("bcd_zheng", "price_lin", "on leave")
    with pytest.raises(CliError, match="reassign needs"):
        build_message(parser.parse_args([*args, "price_lin"]))
