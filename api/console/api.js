// Calls to the JSON API with the key kept in this tab's sessionStorage: it
// is sent in the Authorization header only, never in a URL, and is gone
// when the tab closes or on sign-out.

const KEY = 'trustledger.console.key';
// The API sits beside the console: /console/api.js calls /v1/... (behind a
// proxy's prefix too).
const ROOT = new URL('../', import.meta.url);

export class ApiError extends Error {
  constructor(status, code, detail, problem = {}) {
    super(detail);
    this.status = status;
    this.code = code;
    this.detail = detail;
    // The whole problem document: some carry figures beside the detail (/readyz's).
    this.problem = problem;
  }
}

export const session = {
  get key() {
    return sessionStorage.getItem(KEY);
  },
  signIn(key) {
    sessionStorage.setItem(KEY, key);
  },
  signOut() {
    sessionStorage.removeItem(KEY);
  },
};

function url(path, params) {
  const address = new URL(path.replace(/^\//, ''), ROOT);
  for (const [name, value] of Object.entries(params ?? {})) {
    if (value !== null && value !== undefined && value !== '') address.searchParams.set(name, value);
  }
  return address;
}

async function send(path, params, key) {
  const response = await fetch(url(path, params), {
    headers: { Authorization: `Bearer ${key ?? session.key ?? ''}`, Accept: 'application/json' },
    cache: 'no-store',
    credentials: 'omit',
  });
  if (response.ok) return response;
  let problem = {};
  try {
    problem = await response.json();
  } catch {
    // Not a problem document: the status says enough.
  }
  const error = new ApiError(response.status, problem.code, problem.detail ?? response.statusText, problem);
  if (response.status === 401 && key === undefined) {
    // The key stopped working (revoked, expired): back to the sign-in form.
    window.dispatchEvent(new CustomEvent('trustledger:unauthenticated', { detail: error }));
  }
  throw error;
}

/** The JSON answer of a GET; ``key`` checks a key not yet signed in with. */
export async function getJson(path, params, key) {
  return (await send(path, params, key)).json();
}

/** The answer's bytes, as sent (the log's lines are hashed as they are). */
export async function getBytes(path, params) {
  return new Uint8Array(await (await send(path, params)).arrayBuffer());
}

/** A path segment: an id with any character in it stays one segment. */
export const segment = encodeURIComponent;
