// Accessibility checks of the page the browser shows, run in the page through
// WebDriver's execute_script: arguments[0] names the check. Each check answers
// a list of offences (empty: the page passes), each naming the element by a
// selector-like path so a failure says where to look.

const CONTROLS = 'input:not([type=hidden]), select, textarea, button';
// Elements whose text the browser does not draw as such, or draws elsewhere.
const NOT_DRAWN = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'TITLE', 'OPTION', 'OPTGROUP']);

/** A path of tag#id.class steps, up to the nearest ancestor with an id. */
function where(element) {
  const steps = [];
  for (let node = element; node && node.nodeType === Node.ELEMENT_NODE; node = node.parentElement) {
    let step = node.localName;
    if (node.id) {
      steps.unshift(`${step}#${node.id}`);
      break;
    }
    const classes = [...node.classList].slice(0, 2);
    if (classes.length) step += `.${classes.join('.')}`;
    const siblings = node.parentElement ? [...node.parentElement.children].filter((n) => n.localName === node.localName) : [];
    if (siblings.length > 1) step += `:nth-of-type(${siblings.indexOf(node) + 1})`;
    steps.unshift(step);
  }
  return steps.join(' > ');
}

function textOf(element) {
  return (element?.textContent ?? '').trim();
}

/** The text of the elements an aria-labelledby lists, as a name. */
function labelledBy(element) {
  const ids = (element.getAttribute('aria-labelledby') ?? '').split(/\s+/).filter(Boolean);
  return ids.map((id) => textOf(document.getElementById(id))).join(' ').trim();
}

function drawn(element) {
  return element.getClientRects().length > 0
    && element.checkVisibility({ visibilityProperty: true, opacityProperty: true });
}

// 1. Every form control has an accessible name.
function controlName(control) {
  const label = (control.getAttribute('aria-label') ?? '').trim();
  if (label) return label;
  const byIds = labelledBy(control);
  if (byIds) return byIds;
  // control.labels holds both <label for> and a wrapping <label>.
  const labels = [...(control.labels ?? [])].map(textOf).join(' ').trim();
  if (labels) return labels;
  if (control.localName === 'button') return textOf(control);
  if (['submit', 'button', 'reset'].includes(control.type)) return (control.value ?? '').trim();
  return '';
}

function names() {
  return [...document.querySelectorAll(CONTROLS)]
    .filter((control) => !controlName(control))
    .map((control) => `${where(control)}: no label, aria-label, aria-labelledby or text`);
}

// 2. Images that carry meaning have a text alternative; decorative ones are hidden.
function hiddenFromReaders(element) {
  return element.closest('[aria-hidden=true]') !== null;
}

function svgName(svg) {
  const title = [...svg.children].find((child) => child.localName === 'title');
  return (svg.getAttribute('aria-label') ?? '').trim() || labelledBy(svg) || textOf(title);
}

function images() {
  const offences = [];
  for (const img of document.querySelectorAll('img')) {
    if (!img.hasAttribute('alt') && !hiddenFromReaders(img)) offences.push(`${where(img)}: no alt`);
  }
  // Only outermost SVGs: a nested one is part of its parent's picture.
  for (const svg of document.querySelectorAll('svg:not(svg svg)')) {
    if (hiddenFromReaders(svg)) continue;
    if (svg.getAttribute('role') !== 'img') {
      offences.push(`${where(svg)}: neither role="img" with a name nor aria-hidden`);
    } else if (!svgName(svg)) {
      offences.push(`${where(svg)}: role="img" without aria-label, aria-labelledby or <title>`);
    }
  }
  return offences;
}

// 3. Text contrast (WCAG 2.x relative luminance).
function rgba(css) {
  const found = css.match(/rgba?\(([^)]+)\)/);
  if (!found) return null;
  const [r, g, b, a = 1] = found[1].split(/[\s,/]+/).filter(Boolean).map(Number);
  return { r, g, b, a };
}

/** ``top`` drawn over the opaque colour ``under``. */
function over(top, under) {
  const mix = (x, y) => x * top.a + y * (1 - top.a);
  return { r: mix(top.r, under.r), g: mix(top.g, under.g), b: mix(top.b, under.b), a: 1 };
}

function luminance({ r, g, b }) {
  const channel = (value) => {
    const c = value / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
}

function ratio(one, two) {
  const [light, dark] = [luminance(one), luminance(two)].sort((x, y) => y - x);
  return (light + 0.05) / (dark + 0.05);
}

function css({ r, g, b }) {
  return `rgb(${Math.round(r)}, ${Math.round(g)}, ${Math.round(b)})`;
}

const WHITE = { r: 255, g: 255, b: 255, a: 1 };

/**
 * What the text is drawn on: the ancestors' background colours, from the
 * element up to the first opaque one (the page's is the root's, else white),
 * laid over each other; and the opacity the element and those ancestors add.
 */
function backdrop(element) {
  const layers = [];
  let opacity = 1;
  let node = element;
  for (; node; node = node.parentElement) {
    const style = getComputedStyle(node);
    opacity *= Number(style.opacity);
    const colour = rgba(style.backgroundColor);
    if (colour && colour.a > 0) {
      layers.push(colour);
      if (colour.a === 1) break;
    }
  }
  const ground = layers.length && layers[layers.length - 1].a === 1 ? layers.pop() : WHITE;
  return { colour: layers.reduceRight((under, top) => over(top, under), ground), opacity };
}

function large(style) {
  const size = Number.parseFloat(style.fontSize);
  return size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
}

function ownText(element) {
  return [...element.childNodes].some((node) => node.nodeType === Node.TEXT_NODE && node.data.trim());
}

/** An offence when ``ink`` over ``element``'s backdrop falls short of the ratio its size needs. */
function faint(element, ink, style, what) {
  const { colour: ground, opacity } = backdrop(element);
  const text = over({ ...ink, a: ink.a * opacity }, ground);
  const found = ratio(text, ground);
  const needed = large(style) ? 3 : 4.5;
  if (found >= needed) return null;
  return `${where(element)}: ${what} ${css(text)} on ${css(ground)} is ${found.toFixed(2)}:1,`
    + ` under ${needed}:1 (${textOf(element).slice(0, 40) || element.placeholder})`;
}

function contrast() {
  const offences = [];
  for (const element of document.body.querySelectorAll('*')) {
    if (NOT_DRAWN.has(element.tagName) || !ownText(element) || !drawn(element)) continue;
    const style = getComputedStyle(element);
    // SVG text is painted with fill, HTML text with color.
    const ink = rgba(element instanceof SVGElement ? style.fill : style.color);
    if (ink) offences.push(faint(element, ink, style, 'text'));
  }
  // An empty field's placeholder is text too, in a colour of its own.
  for (const field of document.querySelectorAll('input[placeholder], textarea[placeholder]')) {
    if (field.value || !field.placeholder.trim() || !drawn(field)) continue;
    const ink = rgba(getComputedStyle(field, '::placeholder').color);
    if (ink) offences.push(faint(field, ink, getComputedStyle(field), 'placeholder'));
  }
  return offences.filter(Boolean);
}

// 4. The focused element, and whether it shows that it is: a ring (the
// browser's own, or an outline that stands 3:1 from what it is drawn on) or
// a shadow.
function ringShows(element, style) {
  if (style.outlineStyle === 'none' || Number.parseFloat(style.outlineWidth) === 0) return false;
  if (style.outlineStyle === 'auto') return true;
  const ink = rgba(style.outlineColor);
  // The ring is drawn around the element, on its parent's backdrop.
  const ground = backdrop(element.parentElement).colour;
  return ink !== null && ratio(over(ink, ground), ground) >= 3;
}

function focused() {
  const element = document.activeElement;
  if (!element || element === document.body) return null;
  const style = getComputedStyle(element);
  return { where: where(element), indicated: ringShows(element, style) || style.boxShadow !== 'none' };
}

/** Focus moved to the very top of the page: the next TAB reaches its first control. */
function toTop() {
  document.activeElement?.blur();
  const start = document.createElement('span');
  start.tabIndex = -1;
  document.body.prepend(start);
  start.focus();
  start.addEventListener('blur', () => start.remove(), { once: true });
  return document.activeElement === start;
}

/** What a keyboard user must reach: the skip link, the header's links and buttons, the page's form controls; those drawn. */
function mustReach() {
  const header = [...document.querySelectorAll('body > a, header a, header button')];
  const page = [...document.querySelectorAll(`main :is(${CONTROLS})`)];
  return [...header, ...page].filter(drawn).map(where);
}

// 5. The document's language, landmark and headings.
function structure() {
  const offences = [];
  if (!document.documentElement.lang.trim()) offences.push('html: no lang');
  // A hidden <main> is no landmark: HTML allows others beside the shown one.
  const mains = [...document.querySelectorAll('main, [role=main]')].filter(drawn).length;
  if (mains !== 1) offences.push(`${mains} <main> landmarks, not one`);
  const headings = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].filter(drawn);
  if (!headings.some((heading) => heading.localName === 'h1')) offences.push('no <h1>');
  let previous = 0;
  for (const heading of headings) {
    const level = Number(heading.localName[1]);
    if (level > previous + 1) {
      offences.push(`${where(heading)}: h${level} after ${previous ? `h${previous}` : 'no heading'} (${textOf(heading).slice(0, 40)})`);
    }
    previous = level;
  }
  return offences;
}

const CHECKS = { names, images, contrast, focused, toTop, mustReach, structure };
return CHECKS[arguments[0]]();
