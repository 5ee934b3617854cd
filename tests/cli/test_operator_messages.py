"""``approvals signal``: the payloads of 加签 and 抄送 from the command line."""

from __future__ import annotations

import argparse

import pytest

from cli.errors import CliError
from cli.operator import add_parser, build_message
from domain.process import AddApproversInput, CcInput


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    return parser.parse_args(["signal", "r-1", *argv])


def test_add_approvers_and_cc_are_built_from_the_command_line() -> None:
    msg = build_message(
        _args(
            "add-approvers", "--as", "bcd_zheng", "--people", "price_lin, fh_gao",
            "--position", "before", "--mode", "in_turn", "--comment", "check the price",
        )
    )  # fmt: skip
    assert isinstance(msg, AddApproversInput)
    assert (msg.people, msg.position.value, msg.mode.value) == (
        ["price_lin", "fh_gao"],
        "before",
        "in_turn",
    )
    cc = build_message(_args("cc", "--as", "am_li", "--people", "fin_he"))
    assert isinstance(cc, CcInput) and cc.people == ["fin_he"]


def test_missing_people_or_position_is_said_plainly() -> None:
    with pytest.raises(CliError, match="--people"):
        build_message(_args("cc", "--as", "am_li"))
    with pytest.raises(CliError, match="--position"):
        build_message(_args("add-approvers", "--as", "bcd_zheng", "--people", "price_lin"))
