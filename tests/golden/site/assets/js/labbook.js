/* labbook: the few things a page does with script. Everything works without it: code is in
   <details>, figures link to their files, the search form goes to /search/.
   - the dark/light toggle (remembered in localStorage; theme.js applies it before paint)
   - a copy button on code and on the BibTeX entry
   - figures opened at full size in a dialog
   - the search page: Pagefind's UI over the site's own index
   - a sweep's table sorted by a column (the table reads the same without it) */
(function () {
  "use strict";
  var root = document.documentElement;
  var KEY = "labbook-theme";

  function currentTheme() {
    var set = root.getAttribute("data-theme");
    if (set === "dark" || set === "light") return set;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function setupToggle() {
    var button = document.querySelector(".theme-toggle");
    if (!button) return;
    var show = function () { button.setAttribute("aria-pressed", currentTheme() === "dark" ? "true" : "false"); };
    button.hidden = false;
    show();
    button.addEventListener("click", function () {
      var next = currentTheme() === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { localStorage.setItem(KEY, next); } catch (e) { /* not remembered */ }
      show();
    });
    if (window.matchMedia) {
      var query = window.matchMedia("(prefers-color-scheme: dark)");
      if (query.addEventListener) query.addEventListener("change", show);
    }
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  function setupCopy() {
    var blocks = document.querySelectorAll(".cell-code .highlight, .entry-cite .bibtex");
    Array.prototype.forEach.call(blocks, function (block) {
      var pre = block.querySelector("pre");
      if (!pre) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy-button";
      button.textContent = "Copy";
      button.setAttribute("aria-label", block.classList.contains("bibtex") ? "Copy the BibTeX entry" : "Copy the code");
      button.addEventListener("click", function () {
        copyText(pre.innerText.replace(/\n$/, "")).then(function () {
          button.textContent = "Copied";
        }, function () {
          button.textContent = "Press Ctrl+C";
          var range = document.createRange();
          range.selectNodeContents(pre);
          var selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
        });
        window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
      });
      block.classList.add("has-copy");
      block.insertBefore(button, block.firstChild);
    });
  }

  function setupFigures() {
    var links = document.querySelectorAll("a.figure-link");
    if (!links.length || typeof HTMLDialogElement === "undefined") return;
    var dialog = document.createElement("dialog");
    dialog.className = "figure-dialog";
    dialog.setAttribute("aria-label", "Figure at full size");
    var close = document.createElement("button");
    close.type = "button";
    close.className = "figure-dialog-close";
    close.textContent = "Close";
    var image = document.createElement("img");
    var caption = document.createElement("p");
    caption.className = "figure-dialog-caption";
    dialog.appendChild(close);
    dialog.appendChild(image);
    dialog.appendChild(caption);
    document.body.appendChild(dialog);
    close.addEventListener("click", function () { dialog.close(); });
    dialog.addEventListener("click", function (event) { if (event.target === dialog) dialog.close(); });
    Array.prototype.forEach.call(links, function (link) {
      link.addEventListener("click", function (event) {
        if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
        event.preventDefault();
        var shown = link.querySelector("img");
        image.src = link.getAttribute("href");
        image.alt = shown ? shown.alt : "";
        var figcaption = link.parentNode.querySelector("figcaption");
        caption.textContent = figcaption ? figcaption.textContent : "";
        dialog.showModal();
        close.focus();
      });
    });
  }

  function setupSearch() {
    var box = document.getElementById("search");
    if (!box || typeof window.PagefindUI === "undefined") return;
    var merged = (box.getAttribute("data-merge") || "").split(" ").filter(Boolean);  /* a large site's shards */
    var ui = new window.PagefindUI({
      element: "#search",
      bundlePath: box.getAttribute("data-bundle"),
      mergeIndex: merged.map(function (path) { return { bundlePath: path }; }),
      showSubResults: true,
      showImages: false
    });
    var input = box.querySelector("input[type=text], input[type=search]");
    if (input) input.setAttribute("aria-label", "Search the notebook");  /* its own label is a title only */
    var query = new URLSearchParams(window.location.search).get("q");
    if (query) { ui.triggerSearch(query); } else if (input) { input.focus(); }
    var header = document.querySelector(".site-search");
    if (header) header.hidden = true;  /* this page has its own, bigger box */
  }

  /* a sweep's table (table[data-sortable]): each column header a button that sorts the rows by the
     cells' data-sort values, numbers as numbers, empty cells last; the table reads the same without it */
  function setupSortable() {
    var tables = document.querySelectorAll("table[data-sortable]");
    Array.prototype.forEach.call(tables, function (table) {
      var body = table.tBodies[0];
      var headers = table.querySelectorAll("thead th");
      Array.prototype.forEach.call(headers, function (header, column) {
        if (header.classList.contains("files")) return;
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = header.textContent;
        button.setAttribute("aria-label", "Sort by " + header.textContent);
        header.textContent = "";
        header.appendChild(button);
        header.setAttribute("data-sort-key", String(column));
        button.addEventListener("click", function () {
          var ascending = header.getAttribute("aria-sort") !== "ascending";
          Array.prototype.forEach.call(headers, function (other) { other.removeAttribute("aria-sort"); });
          header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
          var rows = Array.prototype.filter.call(body.rows, function (row) { return !row.classList.contains("more-rows"); });
          var tail = Array.prototype.filter.call(body.rows, function (row) { return row.classList.contains("more-rows"); });
          var key = function (row) { var cell = row.cells[column]; return cell ? cell.getAttribute("data-sort") || "" : ""; };
          rows.sort(function (a, b) {
            var x = key(a), y = key(b);
            if (x === "" || y === "") return (x === "") - (y === "");  /* empty last, either way */
            var nx = Number(x), ny = Number(y);
            var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
            return ascending ? order : -order;
          });
          rows.concat(tail).forEach(function (row) { body.appendChild(row); });
        });
      });
    });
  }

  function start() {
    setupToggle();
    setupCopy();
    setupFigures();
    setupSearch();
    setupSortable();
  }
  /* deferred: runs before DOMContentLoaded, and before the search page's own deferred script */
  document.addEventListener("DOMContentLoaded", start);
})();
