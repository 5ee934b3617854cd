"""A request, a route and a policy in the reader's language (zh-CN or en).

Pure: the API picks the language (the user's preference, else ``Accept-Language``)
and calls these on what it answers. The workflow keeps its texts in the default
language (:data:`domain.text.DEFAULT_LANGUAGE`), as before; here the stage names and
route reasons of a request are read again from its policy by stage key, so a running
request reads in the caller's language too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.conditions import _SYMBOL, _fmt, _referenced
from domain.durations import Span
from domain.policy import AllOf, AnyOf, ApproverSpec, Comparison, Condition, Policy, StageSpec
from domain.process import RequestView
from domain.requests import condition_values
from domain.text import DEFAULT_LANGUAGE, text_in


def field_label(policy: Policy, name: str, lang: str | None) -> str:
    """How people read a form field (or ``amount``): its label, else its name."""
    if name == "amount":
        return text_in(policy.amount.label, lang)
    spec = policy.field(name)
    label = text_in(spec.label, lang) if spec is not None else ""
    return label or name


def field_labels(policy: Policy, lang: str | None) -> dict[str, str]:
    return {f.name: field_label(policy, f.name, lang) for f in policy.fields}


def field_units(policy: Policy, lang: str | None) -> dict[str, str]:
    """The unit of each form field that has one, in ``lang``."""
    return {f.name: f.unit.get(lang) for f in policy.fields if f.unit is not None}


def _unit_zh(policy: Policy, name: str, shown: str) -> str:
    """A value as Chinese reads it: its field's unit right after it (``6%``, ``12个月``)."""
    spec = policy.field(name)
    return shown + spec.unit.get("zh-CN") if spec is not None and spec.unit else shown


def _describe_zh(policy: Policy, cond: Condition) -> str:
    if isinstance(cond, Comparison):
        value = cond.value
        if isinstance(value, bool):
            shown = "是" if value else "否"
        elif isinstance(value, tuple):
            shown = _fmt(value)
        else:
            shown = _unit_zh(policy, cond.field, _fmt(value))
        return f"{field_label(policy, cond.field, 'zh-CN')} {_SYMBOL[cond.op]} {shown}"
    if isinstance(cond, AllOf):
        return " 且 ".join(_paren_zh(policy, c) for c in cond.all)
    if isinstance(cond, AnyOf):
        return " 或 ".join(_paren_zh(policy, c) for c in cond.any)
    return f"非（{_describe_zh(policy, cond.not_)}）"


def _paren_zh(policy: Policy, c: Condition) -> str:
    text = _describe_zh(policy, c)
    return f"（{text}）" if isinstance(c, AllOf | AnyOf) else text


def _approver_zh(a: ApproverSpec) -> str:
    if a.role is not None:
        return f"角色 {a.role}"
    if a.manager is not None:
        return "申请人的直属上级" if a.manager == 1 else f"申请人的第 {a.manager} 级上级"
    if a.requester:
        return "申请人"
    return f"用户 {a.user}"


def stage_reason_zh(policy: Policy, spec: StageSpec, values: Mapping[str, Any]) -> str:
    """Why the stage applies, in Chinese: the values, the rule, who, and how they decide."""
    if spec.when is None:
        why = "始终适用"
    else:
        shown = []
        for name in _referenced(spec.when):
            v = values.get(name)
            value = "是" if v is True else "否" if v is False else _fmt(v)
            value = value if v is None or isinstance(v, bool) else _unit_zh(policy, name, value)
            shown.append(f"{field_label(policy, name, 'zh-CN')} = {value}")
        why = f"{'，'.join(shown)}：{_describe_zh(policy, spec.when)}"
    who = "、".join(_approver_zh(a) for a in spec.approvers)
    mode = "全部同意（会签）" if spec.mode == "all" else "任一人决定（或签）"
    return f"{why} → {who}（{mode}）"


def stage_name(policy: Policy | None, key: str, name: str, lang: str | None) -> str:
    """A route stage's name in ``lang``; ``name`` (as stored) when the policy has it not."""
    spec = next((s for s in policy.stages if s.key == key), None) if policy else None
    return name if spec is None else spec.name.get(lang)


def stage_text(
    policy: Policy | None,
    key: str,
    name: str,
    reason: str,
    values: Mapping[str, Any],
    lang: str | None,
) -> tuple[str, str]:
    """A route stage's name and reason in ``lang``; as stored when the policy has it not."""
    spec = next((s for s in policy.stages if s.key == key), None) if policy else None
    if policy is None or spec is None:
        return name, reason
    if lang == "zh-CN":
        return spec.name.get(lang), stage_reason_zh(policy, spec, values)
    return spec.name.get(lang), reason


def span_text(text: str, lang: str | None) -> str:
    """A deadline's span as the process wrote it (``4 working hours``) in ``lang``;
    a text that does not read as a span is returned as it is."""
    try:
        return Span.parse(text).describe(lang)
    except ValueError:
        return text


def localize_view(view: RequestView, policy: Policy | None, lang: str | None) -> RequestView:
    """The request's type title, stage names, route reasons, field labels and deadline
    spans in ``lang``."""
    working = {
        kind: note.model_copy(update={"span": span_text(note.span, lang)})
        for kind, note in view.working_time.items()
    }
    if policy is None:
        return view.model_copy(update={"working_time": working})
    values = condition_values(view.amount, view.fields)
    stages = []
    for stage in view.stages:
        name, reason = stage_text(policy, stage.key, stage.name, stage.reason, values, lang)
        stages.append(stage.model_copy(update={"name": name, "reason": reason}))
    return view.model_copy(
        update={
            "stages": stages,
            "type_title": text_in(policy.title, lang),
            "field_labels": field_labels(policy, lang),
            "field_units": field_units(policy, lang),
            "amount_label": text_in(policy.amount.label, lang),
            "working_time": working,
        }
    )


__all__ = [
    "DEFAULT_LANGUAGE",
    "field_label",
    "field_labels",
    "field_units",
    "localize_view",
    "span_text",
    "stage_name",
    "stage_text",
]
