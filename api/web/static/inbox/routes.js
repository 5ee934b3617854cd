// The inbox's API calls by name (discussion.js and delegations.js name their own).
// Every API call the page makes: "METHOD path". Nothing else is fetched.
export const API = {
  inbox: "GET /v1/inbox",
  me: "GET /v1/me",
  list: "GET /v1/requests",
  policies: "GET /v1/policies",
  request: "GET /v1/requests/{id}",
  decide: "POST /v1/requests/{id}/decisions",
  sendBack: "POST /v1/requests/{id}/send-back",
  addApprovers: "POST /v1/requests/{id}/approvers",
  addCc: "POST /v1/requests/{id}/cc",
  revoke: "POST /v1/requests/{id}/revoke",
  notices: "GET /v1/notifications",
  noticeRead: "POST /v1/notifications/{id}/read",
  noticesReadAll: "POST /v1/notifications/read-all",
  urge: "POST /v1/requests/{id}/urge",
  reassign: "POST /v1/requests/{id}/reassign",
  bulkDecide: "POST /v1/decisions/bulk",
  resubmit: "POST /v1/requests/{id}/resubmit",
  withdraw: "POST /v1/requests/{id}/withdraw",
  milestone: "POST /v1/requests/{id}/milestones/{name}",
  reports: "GET /v1/reports",
};
