// The SFT-selection page: one candidate clip at a time, accept/reject with criteria.
"use strict";

const sft = { candidate: null, submissionId: null, busy: false };
const clip = document.getElementById("clip");

function checkboxes(containerId, options, group) {
  const container = document.getElementById(containerId);
  container.innerHTML = "";
  Object.entries(options).forEach(([key, label]) => {
    const row = document.createElement("label");
    row.innerHTML = `<input type="checkbox" data-group="${group}" value="${key}"> ${label}`;
    container.appendChild(row);
  });
}

function checked(group) {
  return Array.from(document.querySelectorAll(`input[data-group="${group}"]:checked`), (box) => box.value);
}

async function loadNextCandidate() {
  const next = await api("/api/sft/next");
  setProgress(next.progress);
  document.getElementById("progress-label").textContent = `${next.progress.done} / ${next.progress.total} decided`;
  sft.candidate = next.candidate;
  document.getElementById("candidate").hidden = !sft.candidate;
  document.getElementById("finished").hidden = !!sft.candidate;
  if (!sft.candidate) return;
  sft.submissionId = submissionId();
  document.querySelectorAll("input[type=checkbox]").forEach((box) => { box.checked = false; });
  document.getElementById("note").value = "";
  const c = sft.candidate;
  const fmt = (x) => (x === null || x === undefined ? "–" : Number(x).toFixed(2));
  document.getElementById("clip-meta").textContent =
    `clip ${c.clip_id} · tier ${c.tier || "–"} · aesthetic ${fmt(c.aesthetic_score)} · motion ${fmt(c.motion_score)}`;
  document.getElementById("clip-caption").textContent = c.caption || "";
  clip.src = `/api/sft/${c.candidate_id}/video`;
  clip.play().catch(() => {});
}

async function decide(decision) {
  if (!sft.candidate || sft.busy) return;
  sft.busy = true;
  const status = document.getElementById("status");
  status.textContent = "Saving…";
  try {
    await postWithRetry(`/api/sft/${sft.candidate.candidate_id}/decisions`, {
      client_submission_id: sft.submissionId,
      decision,
      criteria: checked(decision),
      note: document.getElementById("note").value,
    });
    status.textContent = "Saved.";
    await loadNextCandidate();
  } catch (error) {
    status.textContent = "Not saved: " + error.message;
  } finally {
    sft.busy = false;
  }
}

document.getElementById("accept").addEventListener("click", () => decide("accept"));
document.getElementById("reject").addEventListener("click", () => decide("reject"));
document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "INPUT" && event.target.type !== "checkbox") return;
  if (event.key === "a" || event.key === "A") decide("accept");
  else if (event.key === "x" || event.key === "X") decide("reject");
  else if (event.key === " ") { (clip.paused ? clip.play() : clip.pause()); event.preventDefault(); }
});

(async () => {
  await api("/api/me");
  const criteria = await api("/api/sft/criteria");
  checkboxes("accept-criteria", criteria.accept, "accept");
  checkboxes("reject-reasons", criteria.reject, "reject");
  await loadNextCandidate();
})();
