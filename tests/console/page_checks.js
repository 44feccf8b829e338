// Checks run in the page by test_console_browser.py (page.evaluate of each function).

// WCAG 2.x contrast of every element that shows text, against the first opaque background
// behind it: 4.5:1, or 3:1 for large text (24 px, or 18.66 px bold). Returns the failures.
window.rtrelayContrastFailures = () => {
  const lum = (rgb) => {
    const c = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const parse = (s) => { const m = s.match(/[\d.]+/g).map(Number); return [m.slice(0, 3), m.length > 3 ? m[3] : 1]; };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const [rgb, a] = parse(getComputedStyle(e).backgroundColor);
      if (a >= 0.99) return rgb;
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll("main *, header *, .top *")) {
    if (el.closest(".chart, .swagger-ui, .visually-hidden, .skip")) continue;
    const text = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    if (!text || box.width === 0 || box.height === 0) continue;
    const style = getComputedStyle(el);
    const fg = lum(parse(style.color)[0]), bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) bad.push(`${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
  }
  return bad;
};

// Every form control has a label: <label for>, a wrapping label or aria-label.
window.rtrelayUnlabelled = () => [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label"))
  .map((el) => el.outerHTML.slice(0, 80));
