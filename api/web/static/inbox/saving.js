// Saving a choice the user may change again before the first save answered (the page's
// language): one save after the other, so the last choice is the one kept, and each
// answer says whether its choice is still the latest. The inbox and the SLA report share it.
export function inOrder(save) {
  let saving = Promise.resolve();
  let latest = 0;
  return async function saveInOrder(value) {
    const mine = ++latest;
    const saved = saving.then(() => save(value));
    saving = saved.catch(() => {});
    try {
      await saved;
      return { latest: mine === latest, error: null };
    } catch (error) {
      return { latest: mine === latest, error };
    }
  };
}
