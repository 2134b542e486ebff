// Shared helpers of the rater pages: JSON calls with the session cookie, retries, ids.
"use strict";

async function api(path, options = {}) {
  const response = await fetch(path, {
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    ...options,
  });
  if (response.status === 401 && !path.startsWith("/api/login")) {
    window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname);
    throw new Error("not signed in");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || ("HTTP " + response.status));
  return body;
}

// POST that retries network failures with the SAME body, so the server's idempotency key
// (client_submission_id) makes the retry harmless.
async function postWithRetry(path, payload, attempts = 3) {
  let lastError;
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      return await api(path, { method: "POST", body: JSON.stringify(payload) });
    } catch (error) {
      lastError = error;
      if (!(error instanceof TypeError)) throw error; // only network errors are retried
      await new Promise((resolve) => setTimeout(resolve, 400 * (attempt + 1)));
    }
  }
  throw lastError;
}

function submissionId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function setProgress(progress) {
  const bar = document.getElementById("progress-bar");
  const label = document.getElementById("progress-label");
  bar.max = Math.max(progress.total, 1);
  bar.value = progress.done;
  label.textContent = `${progress.done} / ${progress.total} rated`;
}

async function logout() {
  await api("/api/logout", { method: "POST" }).catch(() => {});
  window.location.href = "/login";
}
