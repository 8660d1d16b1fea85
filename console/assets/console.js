// groupgate console: refreshes the parts of a page marked data-poll from
// their URL, without reloading the page, until a part reports itself final
// (an element with data-final). A session that ended sends the browser to
// the sign-in page. No inline script: the page's CSP allows only this file.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="gg-poll"]');
  var every = meta ? parseInt(meta.getAttribute("content"), 10) || 2000 : 2000;

  function poll(el) {
    if (el.querySelector("[data-final]")) {
      return;
    }
    setTimeout(function () {
      fetch(el.getAttribute("data-poll"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (r.status === 401) {
            location.assign(r.headers.get("X-Console-Signin") || "/console/signin");
            return null;
          }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (typeof html === "string") {
            el.innerHTML = html;
            el.setAttribute("data-polled", String(Number(el.getAttribute("data-polled") || "0") + 1));
          }
          poll(el);
        })
        .catch(function () { poll(el); });
    }, every);
  }

  document.querySelectorAll("[data-poll]").forEach(poll);
})();
