// What the page holds between calls: the caller, the lists, the open request.
import { I18N } from "./i18n.js";
export const state = {
  me: null, // the caller (API.me)
  titles: {}, // request type -> its policy's title (API.policies)
  inbox: [],
  selectedId: null,
  openSeq: 0,
  mineCursor: null,
  noticesCursor: null,
  mineRows: [], // what the lists and the detail show, kept to redraw them in another language
  notices: [],
  view: null,
  viewNotice: null, // the key of the line above the detail ("done_approve"), or null
  pending: null, // the last action that failed without a definite answer: {id, action, comment|body, key}
  hashLang: I18N.fromHash(), // kept in the fragment while it names the language
  mineLoaded: false, // the "my requests" tab has been loaded once
};
