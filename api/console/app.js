// The console's shell: sign-in, the pages by hash route, and what the
// signed-in key's role may see (GET /v1/me).

import { ApiError, getJson, session } from './api.js';
import * as audit from './audit.js';
import * as whatif from './whatif.js';
import * as buyer from './buyer.js';
import { h, problemText } from './dom.js';
import * as explain from './explain.js';
import * as ops from './ops.js';
import { go, hashOf, parse, takeFocusAfter } from './nav.js';
import { may } from './roles.js';
import * as seller from './seller.js';
import * as trade from './trade.js';

const main = document.getElementById('main');
let me = null;

function setBusy(busy) {
  main.setAttribute('aria-busy', String(busy));
  main.dataset.state = busy ? 'loading' : 'ready';
}

function showShell() {
  const signedIn = me !== null;
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('who').hidden = !signedIn;
  document.getElementById('nav-audit').hidden = !may(me, 'audit');
  document.getElementById('nav-whatif').hidden = !may(me, 'audit');
  document.getElementById('nav-operations').hidden = !may(me, 'operations');
  document.getElementById('who-role').textContent = signedIn ? `${me.role} key ${me.key_id}` : '';
}

function signInPage(message) {
  me = null;
  showShell();
  const form = document.getElementById('sign-in-form').content.cloneNode(true);
  main.replaceChildren(form);
  const error = document.getElementById('sign-in-error');
  error.textContent = message ?? '';
  document.getElementById('sign-in').addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = document.getElementById('api-key').value.trim();
    error.textContent = '';
    try {
      me = await getJson('/v1/me', null, key);
    } catch (refused) {
      error.textContent = refused instanceof ApiError && refused.status === 401
        ? 'This key is not known to the server.'
        : `The key could not be checked: ${refused.message}`;
      return;
    }
    session.signIn(key);
    showShell();
    await route();
  });
  setBusy(false);
  document.getElementById(message ? 'api-key' : 'sign-in-title').focus();
}

function lookup(label, id, page) {
  const input = h('input', { id, name: id, required: true, spellcheck: 'false', autocomplete: 'off' });
  return h('form', { class: 'controls', onsubmit: (event) => {
    event.preventDefault();
    go(hashOf([page, input.value.trim()]));
  } }, h('div', { class: 'field' }, h('label', { for: id }, label), input), h('button', { type: 'submit' }, 'Open'));
}

function home(view) {
  view.append(
    h('h1', { tabindex: '-1' }, 'Look up'),
    h('section', { class: 'card narrow' },
      h('h2', null, 'A seller'), lookup('Seller id', 'seller-id', 'seller'),
      h('h2', null, 'A buyer'), lookup('Buyer id', 'buyer-id', 'buyer'),
      h('h2', null, 'A trade'), lookup('Trade id', 'trade-id', 'trade'),
      may(me, 'audit') ? [h('h2', null, 'The log'), h('p', null, h('a', { href: '#/audit' }, 'Check the signed tree head and an event\'s inclusion'))] : null),
  );
}

async function route() {
  if (me === null) return;
  setBusy(true);
  const { parts, params } = parse(location.hash);
  const view = h('div', { class: 'view' });
  main.replaceChildren(view);
  const [page, id] = parts;
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.page === (page ?? 'home')) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  try {
    if (!page) home(view);
    else if (page === 'seller' && id) await seller.render(view, me, id, params);
    else if (page === 'trade' && id) await trade.render(view, me, id);
    else if (page === 'buyer' && id) await buyer.render(view, me, id, params);
    else if (page === 'explain' && id) await explain.render(view, me, id, params);
    else if (page === 'audit') await audit.render(view, me, params);
    else if (page === 'whatif') await whatif.render(view, me, params);
    else if (page === 'operations') await ops.render(view, me);
    else view.append(h('h1', { tabindex: '-1' }, 'No such page'), h('p', null, h('a', { href: '#/' }, 'Look up a seller or a trade')));
  } catch (error) {
    view.append(problemText(error));
  }
  if (!view.isConnected) return; // another page was asked for meanwhile
  document.title = `${view.querySelector('h1')?.textContent ?? 'Console'} · TrustLedger`;
  const focus = takeFocusAfter();
  (focus && document.getElementById(focus)) ? document.getElementById(focus).focus() : view.querySelector('h1')?.focus();
  setBusy(false);
}

async function start() {
  document.getElementById('sign-out').addEventListener('click', () => {
    session.signOut();
    signInPage('Signed out.');
  });
  window.addEventListener('hashchange', route);
  window.addEventListener('trustledger:unauthenticated', () => {
    session.signOut();
    signInPage('The key is no longer accepted; sign in again.');
  });
  if (session.key) {
    try {
      me = await getJson('/v1/me', null, session.key);
    } catch {
      session.signOut();
    }
  }
  if (me === null) {
    signInPage();
    return;
  }
  showShell();
  await route();
}

start();
