/* labbook: apply the reader's saved theme before the page paints (no flash of the wrong one).
   Loaded without defer in <head>; the toggle itself is in labbook.js. */
(function () {
  try {
    var saved = localStorage.getItem("labbook-theme");
    if (saved === "dark" || saved === "light") document.documentElement.setAttribute("data-theme", saved);
  } catch (e) { /* storage blocked: follow the system setting */ }
})();
