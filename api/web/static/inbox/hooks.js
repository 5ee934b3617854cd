// Calls that go up the module graph: a lower module (api.js, inbox.js...) needs to open
// a request, sign out or redraw the inbox, which higher modules do. They register here
// (provide) when they load, and the lower ones call through these, so the imports stay
// a tree with no circle (tests/web/test_module_graph.py).
const late = {};

export function provide(functions) { Object.assign(late, functions); }

function through(name) {
  return (...args) => {
    if (!late[name]) throw new Error("hooks: " + name + " was never provided");
    return late[name](...args);
  };
}

export const openRequest = through("openRequest");
export const loadInbox = through("loadInbox");
export const renderInbox = through("renderInbox");
export const signOut = through("signOut");
export const followSavedLanguage = through("followSavedLanguage");
