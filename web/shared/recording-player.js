// @ts-check
// Playing a recording from the customer's history (advisor console): a "Play" disclosure on
// the timeline entry of a ready recording that loads the file only when opened. The file is
// streamed with HTTP Range by /api/v1/recordings/{id}/media, which lets in only the advisor of
// the recording's consultation, supervisors and admins (403 otherwise: the "unavailable" note)
// and writes every access to the audit log.
//
// The file holds four tracks (shopper video and audio, advisor video and audio); a browser
// plays the first video and audio track — the shopper's — and the download has them all
// (VLC, ffplay … let you pick).
import { t } from "/shared/i18n.js";
import { el } from "/shared/dom.js";

function length(ms) {
  const total = Math.round((ms ?? 0) / 1000);
  return t("recording.list.duration", { minutes: Math.floor(total / 60), seconds: total % 60 });
}

function seconds(ms) {
  return Math.round((ms ?? 0) / 100) / 10;
}

/** "the customer 12.3–15.8 s, the advisor 12.3–15.1 s": where a recording misses a party. */
export function missingText(gaps) {
  return (gaps ?? [])
    .map((gap) =>
      t("recording.gap", {
        who: t(`recording.participant.${gap.participant}`),
        from: seconds(gap.from_ms),
        to: seconds(gap.to_ms),
      }),
    )
    .join(t("recording.gap_separator"));
}

/** The player for a timeline event of kind "recording", or null when there is nothing to play. */
export function recordingPlayer(event) {
  const data = event?.data ?? {};
  if (event?.kind !== "recording" || data.status !== "ready" || !data.recording_id) return null;
  const url = `/api/v1/recordings/${encodeURIComponent(data.recording_id)}/media`;
  const box = el("details", { class: "rec-player", "data-testid": "recording-player" });
  box.append(el("summary", { text: `${t("recording.list.play")} (${length(data.duration_ms)})` }));
  if (data.incomplete) {
    // Never shown as simply saved when a party is missing for a while (their leg's server died).
    box.append(
      el("p", { class: "rec-incomplete", text: t("recording.list.incomplete", { missing: missingText(data.gaps) }), "data-testid": "recording-incomplete" }),
    );
  }
  const note = el("p", { class: "rec-error", role: "status" });
  note.hidden = true;
  box.addEventListener("toggle", () => {
    if (!box.open || box.querySelector("video")) return;
    const video = el("video", { controls: "", preload: "metadata", src: url, "aria-label": t("recording.list.title") });
    video.style.width = "100%";
    video.addEventListener("error", () => {
      note.hidden = false;
      note.textContent = t("recording.list.unavailable");
    });
    box.append(video, el("a", { text: t("recording.list.download"), href: url, download: "" }), note);
  });
  return box;
}
