// codexgate console: confirmations and the request log's live rows. Our own code, no libraries.
"use strict";

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});

function startLiveRequests() {
  const live = document.getElementById("live");
  const table = document.getElementById("requests");
  if (!live || !table) return;
  const body = table.tBodies[0];
  const pageSize = 50;
  const intervalMs = Math.max(1000, Number(live.dataset.intervalMs || "3000"));
  // bounded: polling ends after a while (15 minutes by default); a reload starts it again
  const stopAt = Date.now() + Number(live.dataset.stopAfterMs || "900000");
  let after = Number(live.dataset.after || "0");
  let busy = false;

  async function poll() {
    if (Date.now() > stopAt) {
      live.textContent = "Live updates paused: reload the page to resume.";
      return;
    }
    if (!document.hidden && !busy) {
      busy = true;
      try {
        const separator = live.dataset.poll.includes("?") ? "&" : "?";
        const response = await fetch(live.dataset.poll + separator + "after=" + after, {
          credentials: "same-origin",
          headers: { Accept: "application/json" },
        });
        if (response.status === 401) {
          live.textContent = "Logged out: live updates stopped.";
          return;
        }
        if (response.ok) {
          const data = await response.json();
          const rows = data.rows || [];
          for (let i = rows.length - 1; i >= 0; i--) {
            const row = rows[i];
            const tr = document.createElement("tr");
            tr.className = "fresh" + (row.error ? " err" : "");
            for (const text of row.cells) {
              const td = document.createElement("td");
              td.textContent = text;
              tr.appendChild(td);
            }
            body.insertBefore(tr, body.firstChild);
            after = Math.max(after, row.id);
          }
          if (rows.length) {
            table.hidden = false;
            const empty = table.previousElementSibling;
            if (empty && empty.classList.contains("empty")) empty.hidden = true;
          }
          while (body.rows.length > pageSize) body.deleteRow(body.rows.length - 1);
        }
      } catch (error) {
        // a failed poll is retried on the next tick
      } finally {
        busy = false;
      }
    }
    window.setTimeout(poll, intervalMs);
  }
  window.setTimeout(poll, intervalMs);
}

document.addEventListener("DOMContentLoaded", startLiveRequests);
