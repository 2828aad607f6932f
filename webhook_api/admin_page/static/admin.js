// In-place updates for the admin page. Every form and link works without this file: it only sends
// the same requests in the background and swaps the answer's <main> in, so the page keeps its place.
(() => {
  "use strict";

  const main = () => document.getElementById("main");
  let timer = null;

  function localize(root) {
    for (const el of root.querySelectorAll("time[datetime]")) {
      const moment = new Date(el.getAttribute("datetime"));
      if (Number.isNaN(moment.getTime())) continue;
      el.title = moment.toLocaleString();
      if (el.hasAttribute("data-clock")) el.textContent = moment.toLocaleTimeString();
    }
  }

  function updateSelection(root) {
    for (const button of root.querySelectorAll("[data-needs-selection]")) {
      button.disabled = !button.form.querySelector("input[name=ids]:checked");
    }
  }

  function settle(root) {
    localize(root);
    updateSelection(root);
    planRefresh();
  }

  function swap(html, url, redirected) {
    const doc = new DOMParser().parseFromString(html, "text/html");
    const next = doc.getElementById("main");
    if (!next) {
      window.location.assign(url);
      return;
    }
    main().replaceWith(next);
    document.title = doc.title;
    if (redirected && url !== window.location.href) history.replaceState(null, "", url);
    settle(next);
  }

  async function send(form, submitter) {
    const body = new URLSearchParams(new FormData(form));
    if (submitter) {
      submitter.disabled = true;
      if (form.dataset.busy) submitter.textContent = form.dataset.busy;
    }
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body,
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" },
      });
      swap(await response.text(), response.url, response.redirected);
    } catch (error) {
      form.submit(); // the network failed in between: let the browser try the plain way
    }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-inplace")) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    send(form, event.submitter);
  });

  document.addEventListener("change", (event) => {
    if (event.target.name === "ids") updateSelection(document);
  });

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const input = document.getElementById(button.dataset.copy);
    input.select();
    let copied = false;
    try {
      await navigator.clipboard.writeText(input.value);
      copied = true;
    } catch (error) {
      copied = document.execCommand("copy"); // plain http on another host: no clipboard API
    }
    button.textContent = copied ? "Copied" : "Press Ctrl+C";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });

  function planRefresh() {
    clearTimeout(timer);
    const seconds = Number(main()?.dataset.refresh);
    if (seconds > 0) timer = setTimeout(refresh, seconds * 1000);
  }

  async function refresh() {
    // Never under the reader's hands: not while the tab is hidden or a form field has focus.
    if (document.hidden || document.activeElement?.closest("#main form")) {
      planRefresh();
      return;
    }
    try {
      const response = await fetch(window.location.href, {
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" },
      });
      if (response.redirected) {
        window.location.assign(response.url); // signed out meanwhile: show the sign-in page
        return;
      }
      if (response.ok) {
        swap(await response.text(), response.url, false);
        return;
      }
    } catch (error) {
      // The server is restarting or unreachable: try again at the next interval.
    }
    planRefresh();
  }

  document.addEventListener("DOMContentLoaded", () => settle(document));
})();
