// Building the page: elements from data, never from HTML strings, so a
// member's id or a rating's text is always shown as text.

const SVG = 'http://www.w3.org/2000/svg';

function build(element, attributes, children) {
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An HTML element with attributes (on* names add listeners) and children. */
export function h(tag, attributes, ...children) {
  return build(document.createElement(tag), attributes, children);
}

/** An SVG element, as ``h``. */
export function s(tag, attributes, ...children) {
  return build(document.createElementNS(SVG, tag), attributes, children);
}

/** A definition list from [term, value, attributes-of-the-value] rows. */
export function facts(rows, attributes) {
  return h('dl', { class: 'facts', ...attributes },
    rows.map(([term, value, extra]) => [h('dt', null, term), h('dd', extra, value)]));
}

/** A section with a heading, its body filled in later by ``fill``. */
export function section(title, id) {
  const heading = h('h2', { id: `${id}-title` }, title);
  const body = h('div', { class: 'body', 'data-state': 'loading' }, h('p', { class: 'muted' }, 'Loading…'));
  const element = h('section', { class: 'card', id, 'aria-labelledby': heading.id }, heading, body);
  return { element, body };
}

/** Fill a section's body with what ``load`` returns, or with why it failed. */
export async function fill(body, load) {
  try {
    const content = await load();
    body.replaceChildren(...[content].flat(Infinity).filter((part) => part !== null && part !== undefined));
    body.dataset.state = 'ready';
  } catch (error) {
    body.replaceChildren(problemText(error));
    body.dataset.state = 'error';
  }
}

/**
 * A section added to ``into`` and filled by ``load`` (its promise pushed on
 * ``loads``), or, when the key's role may not read it, with that refusal.
 */
export function addSection({ into, loads, me }, title, id, allowed, load) {
  const part = section(title, id);
  into.append(part.element);
  loads.push(fill(part.body, allowed ? load : async () => {
    throw new Error(`A ${me.role} key may not read this.`);
  }));
}

export function problemText(error) {
  const detail = error?.detail ?? error?.message ?? String(error);
  const status = error?.status ? ` (${error.status}${error.code ? ` ${error.code}` : ''})` : '';
  return h('p', { class: 'error', role: 'alert' }, `${detail}${status}`);
}
