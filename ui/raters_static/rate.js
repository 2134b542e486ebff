// The pairwise rating page: synchronised players, four questions, keyboard shortcuts, progress.
"use strict";

const QUESTIONS = [
  ["text_alignment", "Text alignment", "Which video follows the prompt more completely and accurately?"],
  ["motion_quality", "Motion quality", "Which has smoother, more natural and plausible motion?"],
  ["visual_quality", "Visual quality", "Which looks sharper and cleaner, with better colour and light?"],
  ["overall", "Overall preference", "All things considered, which video do you prefer?"],
];
const CHOICES = [["left", "Left better"], ["same", "Same"], ["right", "Right better"]];

const state = { assignment: null, answers: {}, current: 0, submissionId: null, shownAt: 0, busy: false };
const left = document.getElementById("video-left");
const right = document.getElementById("video-right");

function buildQuestions() {
  const container = document.getElementById("questions");
  container.innerHTML = "";
  QUESTIONS.forEach(([key, label, help], index) => {
    const row = document.createElement("div");
    row.className = "question";
    row.id = "q-" + key;
    row.innerHTML = `<div><strong>${index + 1}. ${label}</strong><div class="meta">${help}</div></div>`;
    const choices = document.createElement("div");
    choices.className = "choices";
    CHOICES.forEach(([value, text], choiceIndex) => {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.question = key;
      button.dataset.value = value;
      button.textContent = `${text} (${choiceIndex + 1})`;
      button.addEventListener("click", () => answer(index, value));
      choices.appendChild(button);
    });
    row.appendChild(choices);
    row.addEventListener("click", () => focusQuestion(index));
    container.appendChild(row);
  });
}

function render() {
  QUESTIONS.forEach(([key], index) => {
    const row = document.getElementById("q-" + key);
    row.classList.toggle("current", index === state.current);
    row.querySelectorAll("button").forEach((b) => b.classList.toggle("selected", state.answers[key] === b.dataset.value));
  });
  document.getElementById("submit").disabled = state.busy || Object.keys(state.answers).length !== QUESTIONS.length;
}

function focusQuestion(index) {
  state.current = Math.max(0, Math.min(QUESTIONS.length - 1, index));
  render();
}

function answer(index, value) {
  state.answers[QUESTIONS[index][0]] = value;
  state.current = Math.min(QUESTIONS.length - 1, index + 1);
  render();
}

// --- synchronised playback: the left player leads, the right one follows -------------------
function playBoth() {
  right.currentTime = left.currentTime;
  return Promise.all([left.play(), right.play()]).catch(() => {});
}
function pauseBoth() { left.pause(); right.pause(); right.currentTime = left.currentTime; }
function togglePlay() { (left.paused ? playBoth : pauseBoth)(); }
function restart() { left.currentTime = 0; right.currentTime = 0; playBoth(); }
left.addEventListener("timeupdate", () => {
  // Correct drift larger than a frame or two; the clips are short so drift shows quickly.
  if (!right.paused && Math.abs(right.currentTime - left.currentTime) > 0.08) right.currentTime = left.currentTime;
  if (left.duration) document.getElementById("scrub").value = Math.round((1000 * left.currentTime) / left.duration);
});
document.getElementById("scrub").addEventListener("input", (event) => {
  if (!left.duration) return;
  const t = (event.target.value / 1000) * left.duration;
  left.currentTime = t;
  right.currentTime = Math.min(t, right.duration || t);
});
document.getElementById("play").addEventListener("click", togglePlay);
document.getElementById("restart").addEventListener("click", restart);

async function loadNext() {
  const next = await api("/api/assignments/next");
  setProgress(next.progress);
  state.assignment = next.assignment;
  if (!state.assignment) {
    document.getElementById("rating").hidden = true;
    document.getElementById("finished").hidden = false;
    left.removeAttribute("src");
    right.removeAttribute("src");
    return;
  }
  state.answers = {};
  state.current = 0;
  state.submissionId = submissionId(); // one id per shown item: retries reuse it
  state.shownAt = performance.now();
  const id = state.assignment.assignment_id;
  document.getElementById("prompt").textContent = state.assignment.prompt;
  left.src = `/api/assignments/${id}/video/left`;
  right.src = `/api/assignments/${id}/video/right`;
  document.getElementById("rating").hidden = false;
  document.getElementById("finished").hidden = true;
  document.getElementById("status").textContent = "";
  playBoth();
  render();
}

async function submit() {
  if (state.busy || Object.keys(state.answers).length !== QUESTIONS.length) return;
  state.busy = true;
  render();
  const status = document.getElementById("status");
  status.textContent = "Saving…";
  try {
    const result = await postWithRetry(`/api/assignments/${state.assignment.assignment_id}/ratings`, {
      client_submission_id: state.submissionId,
      answers: state.answers,
      // The server takes at most 7 days (MAX_ELAPSED_MS): a tab left open longer still saves.
      elapsed_ms: Math.min(Math.round(performance.now() - state.shownAt), 7 * 24 * 3600 * 1000),
    });
    setProgress(result.progress);
    status.textContent = "Saved.";
    await loadNext();
  } catch (error) {
    status.textContent = "Not saved: " + error.message + " (press Enter to retry)";
  } finally {
    state.busy = false;
    render();
  }
}
document.getElementById("submit").addEventListener("click", submit);

document.addEventListener("keydown", (event) => {
  if (!state.assignment || event.target.tagName === "INPUT" || event.ctrlKey || event.metaKey || event.altKey) return;
  const keys = { "1": "left", "2": "same", "3": "right" };
  if (keys[event.key]) { answer(state.current, keys[event.key]); event.preventDefault(); }
  else if (event.key === "ArrowDown") { focusQuestion(state.current + 1); event.preventDefault(); }
  else if (event.key === "ArrowUp") { focusQuestion(state.current - 1); event.preventDefault(); }
  else if (event.key === " ") { togglePlay(); event.preventDefault(); }
  else if (event.key === "r" || event.key === "R") { restart(); }
  else if (event.key === "Enter") { submit(); event.preventDefault(); }
});

(async () => {
  const me = await api("/api/me");
  document.getElementById("who").textContent = "— " + me.name;
  buildQuestions();
  await loadNext();
})();
