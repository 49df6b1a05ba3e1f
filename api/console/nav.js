// Moving between pages: a page changes the address's hash and the router
// draws the page again; focus goes back to the control that asked for it.

let focusAfter = null;

/** Show ``hash``; ``focusId`` names the control to focus once it is drawn. */
export function go(hash, focusId = null) {
  focusAfter = focusId;
  if (location.hash === hash) {
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    location.hash = hash;
  }
}

export function takeFocusAfter() {
  const id = focusAfter;
  focusAfter = null;
  return id;
}

/** A hash route ``#/seller/<id>?as_of=...``: its parts and its parameters. */
export function parse(hash) {
  const [path, query = ''] = hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query) };
}

export function hashOf(parts, params = {}) {
  const query = new URLSearchParams(
    Object.entries(params).filter(([, value]) => value !== null && value !== undefined && value !== ''),
  ).toString();
  return `#/${parts.map(encodeURIComponent).join('/')}${query ? `?${query}` : ''}`;
}
