// What each role may read (api/auth.py), so a page shows only what its key
// may see; the server still decides, and a refusal is shown as it comes.

const QUERY = ['reader', 'auditor', 'admin'];

export const MAY = {
  figures: QUERY,
  penalty: ['ranking', ...QUERY],
  trades: ['service', ...QUERY],
  audit: ['auditor', 'admin'],
  operations: ['admin'],
};

export function may(me, what) {
  return Boolean(me) && MAY[what].includes(me.role);
}
