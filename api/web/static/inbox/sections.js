// The detail's read-only sections: fields, stages, milestones, history.
import { minus } from "./amounts.js";
import { $, el } from "./dom.js";
import { human, isPast, joined, money, overdueBadge, person, provisionalBadge, stageBadge, statusBadge, when } from "./format.js";
import { t, tn, word } from "./i18n.js";

// Each field by its label in the reader's language (the view's `field_labels`), its value
// followed by its unit when it has one (the view's `field_units`: 天, %, 元).
export function fieldsSection(fields, labels, units) {
  const entries = Object.entries(fields || {});
  if (!entries.length) return null;
  return el("section", { "aria-labelledby": "fields-title" },
    el("h3", { id: "fields-title" }, t("details")),
    el("dl", { class: "facts" }, entries.map(([key, value]) => [
      el("dt", null, (labels && labels[key]) || human(key)),
      el("dd", null, typeof value === "object" && value !== null ? JSON.stringify(value)
        : units && units[key] ? String(value) + " " + units[key] : String(value)),
    ])));
}

export function stagesSection(view) {
  const decisions = {};
  for (const event of view.history) {
    const stage = event.data && event.data.stage;
    if (stage && /^(approved|rejected|returned|transferred|sent_back)$/.test(event.kind)) {
      (decisions[stage] = decisions[stage] || []).push(event);
    }
  }
  return el("section", { "aria-labelledby": "route-title" },
    el("h3", { id: "route-title" }, t("route")),
    el("ol", { class: "stages" }, view.stages.map((stage) => el("li", {
      class: "stage" + (stage.status === "active" ? " active" : ""),
      "aria-current": stage.index === view.stage_index && stage.status === "active" ? "step" : null,
    },
    el("div", { class: "row" }, el("strong", null, (stage.index + 1) + ". " + stage.name),
      stageBadge(stage.status), el("span", { class: "meta" }, word("mode", stage.mode))),
    stage.reason ? el("div", { class: "meta" }, stage.reason) : null,
    stage.status === "active" && stage.reply_due
      ? el("div", { class: "row meta" }, tn("reply_due", { when: when(stage.reply_due, true) }),
        (view.working_time || {}).reply ? t("in_brackets", { text: view.working_time.reply.span }) : null,
        ((view.working_time || {}).reply || {}).provisional ? [" ", provisionalBadge()] : null,
        isPast(stage.reply_due) ? overdueBadge() : null)
      : null,
    stage.slots.length
      ? el("ul", null, stage.slots.map((slot) => slotLine(stage, slot, decisions[stage.key] || [])))
      : null,
    // Decisions that no longer count: the request was sent back over this stage.
    (stage.superseded || []).length
      ? el("ul", { class: "superseded" }, stage.superseded.map((d) => el("li", { class: "meta" },
        tn("slot_superseded", {
          label: d.label, decision: word("decision", d.decision), who: person(d.decided_by),
          when: d.decided_at ? when(d.decided_at) : "", by: person(d.superseded_by),
          at: when(d.superseded_at),
        }))))
      : null,
    (decisions[stage.key] || []).filter((e) => e.kind !== "approved").map((e) =>
      el("div", { class: "meta" }, tn("event_by", {
        event: word("event", e.kind), who: person(e.actor, e.on_behalf_of), when: when(e.at),
      }), e.comment ? t("quoted", { comment: e.comment }) : ""))))));
}

export function slotLine(stage, slot, events) {
  if (slot.automatic) {
    // Approved by the policy's resolution rules; the auto_approved event says why.
    return el("li", null, t("slot_automatic", { label: slot.label }),
      slot.decided_at ? tn("at_time", { when: when(slot.decided_at) }) : null);
  }
  if (slot.decision) {
    const event = events.find((e) => e.kind === slot.decision + "d" && e.actor === slot.decided_by);
    return el("li", null, tn("slot_decided", {
      label: slot.label,
      decision: el("span", { class: "badge ok" }, word("decision", slot.decision)),
      who: person(slot.decided_by || "?", event && event.on_behalf_of),
    }),
    slot.decided_at ? tn("at_time", { when: when(slot.decided_at) }) : null,
    event && event.comment ? t("quoted", { comment: event.comment }) : null);
  }
  const queued = slot.queued || [];
  if (queued.length) {  // 加签: people who decide once those before them approved
    return el("li", null, t("slot_queued", {
      label: slot.label, by: slot.added_by || "?",
      people: joined(queued.map((a) => person(a.user, a.on_behalf_of))),
    }));
  }
  const people = joined(slot.actors.map((a) => t("person_via", {
    who: person(a.user, a.on_behalf_of), via: via(a.via),
  })));
  const line = !people ? "slot_nobody" : stage.status === "active" ? "slot_waiting" : "slot_people";
  return el("li", null, t(line, { label: slot.label, people }));
}

// How someone came to hold a step: "role:<name>", "manager", "delegation"...
export function via(code) {
  const role = /^role:(.+)$/.exec(String(code));
  return role ? t("via_role", { name: role[1] }) : word("via", code);
}

// Each milestone: required, paid, what remains, when due (an open one's due in working
// time says so: note, the view's working_time.milestone), and the payments recorded.
export function milestonesSection(milestones, note) {
  return el("section", { "aria-labelledby": "milestones-title" },
    el("h3", { id: "milestones-title" }, t("milestones")),
    // Wider than a phone: it scrolls sideways, so the keyboard can reach it too.
    el("div", { class: "scroll", tabindex: "0", role: "region", "aria-labelledby": "milestones-title" },
      el("table", null,
      el("thead", null, el("tr", null, ["m_name", "m_status", "m_required", "m_paid", "m_remaining", "m_due"].map((h) =>
        el("th", { scope: "col", class: /^m_(required|paid|remaining)$/.test(h) ? "num" : null }, t(h))))),
      el("tbody", null, milestones.map((m) => [
        el("tr", null,
          el("td", null, m.title || m.name),
          el("td", null, statusBadge(m.status, "milestone_status")),
          el("td", { class: "num" }, money(m.required)),
          el("td", { class: "num" }, money(m.paid)),
          el("td", { class: "num", "data-remaining": m.name },
            m.required === null || m.required === undefined ? "—" : money(minus(m.required, m.paid))),
          el("td", null, m.due ? when(m.due, m.status === "open") : "—",
            m.status === "open" && note ? t("in_brackets", { text: note.span }) : null,
            m.status === "open" && isPast(m.due) ? [" ", overdueBadge()] : null)),
        m.payments.map((p) => el("tr", null,
          el("td", { class: "meta" }, t("payment"),
            p.reference ? " " + t("payment_ref", { reference: p.reference }) : ""),
          el("td", { class: "meta" }, t("payment_by", { user: p.by })),
          el("td", null),
          el("td", { class: "num meta" }, money(p.amount)),
          el("td", null),
          el("td", { class: "meta" }, when(p.at)))),
      ])))));
}

export function historySection(history) {
  return el("section", { "aria-labelledby": "history-title" },
    el("h3", { id: "history-title" }, t("history")),
    history.length ? el("div", { class: "scroll", tabindex: "0", role: "region",
      "aria-labelledby": "history-title" }, el("table", null,
      el("thead", null, el("tr", null, ["h_seq", "h_time", "h_what", "h_who", "h_comment"].map((h) =>
        el("th", { scope: "col" }, t(h))))),
      el("tbody", null, history.map((e) => el("tr", null,
        el("td", { class: "num" }, e.seq),
        el("td", null, when(e.at)),
        el("td", null, word("event", e.kind)),
        el("td", null, person(e.actor, e.on_behalf_of)),
        el("td", null, e.comment || "")))))) : el("p", { class: "empty" }, t("history_empty")));
}
