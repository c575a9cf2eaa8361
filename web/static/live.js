// live.js keeps a page current while the server marks it as changing
// (data-refresh on <main>, in seconds): it fetches the page again and copies
// the regions marked data-live, by id, into the page in place, hiding those
// the server no longer sends. Nothing reloads, so focus and reading position
// stay, and the status line, a role="status" region, is read out when it
// changes. It stops once the server no longer marks the page, or when the
// session has ended (the fetch was redirected to sign in). Without script
// the page still works: it offers a link to check again.
(() => {
  "use strict";
  const main = document.getElementById("main");
  const every = Number(main && main.dataset.refresh) * 1000;
  if (!every) return;
  const update = async () => {
    let next;
    try {
      const res = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
      if (res.redirected) return; // signed out meanwhile: leave the page as it is
      if (!res.ok) return setTimeout(update, every);
      next = new DOMParser().parseFromString(await res.text(), "text/html");
    } catch {
      return setTimeout(update, every);
    }
    for (const el of document.querySelectorAll("[data-live]")) {
      const fresh = next.getElementById(el.id);
      el.hidden = !fresh; // e.g. a notice the server no longer shows
      if (fresh && fresh.innerHTML !== el.innerHTML) el.innerHTML = fresh.innerHTML;
    }
    const nextMain = next.getElementById("main");
    if (nextMain && nextMain.dataset.refresh) setTimeout(update, every);
    else delete main.dataset.refresh;
  };
  setTimeout(update, every);
})();
