// @ts-check
// Does the other side's picture show? Decided from what really arrives, never from
// `track.muted`: Chromium leaves a remote video track muted after a renegotiation or a
// replaceTrack while its frames are decoded, and keeps it unmuted while a disabled camera sends
// black frames — so a page that trusted it hid live video and showed black boxes.
//
// Two facts are combined (docs/browser-contract.md, "Video presence"):
//  - frames: the video receivers' framesDecoded (getStats) advanced within the last STALL_MS;
//  - what the other side says it sends: "camera" | "screen" | "none", on a small data channel
//    of the call's own peer connection (negotiated, id 0: both sides open it without a
//    signal, and it lives and dies with that peer connection). "none" shows the avatar at
//    once, even before the last frames in flight are decoded; an engine that says nothing
//    (unknown) is judged on frames alone.
// A picture shows when frames keep arriving and the other side does not say "none" — and a
// shared screen, once its frames arrived, until the other side says otherwise: a still slide
// sends no new frames at all.

const CHANNEL = "livedesk-picture";
const CHANNEL_ID = 0;
const PICTURES = new Set(["camera", "screen", "none"]);
const EVERY_MS = 400;
// A camera sends frames all the time (a few a second at worst): this long without one, its
// picture is gone (a frozen last frame is not shown as if live).
export const STALL_MS = 2_500;

export class RemotePicture {
  #pc = null;
  #channel = null;
  #own = "none"; // what this side sends, told to the other side
  #theirs = null; // what the other side says it sends (null: not said)
  #frames = 0; // framesDecoded at the last reading, for this peer connection
  #seenAt = 0; // when frames last advanced (0: not since the picture (re)started)
  #active = false;
  #told = null; // the picture last reported to onChange
  #timer = null;
  #busy = false;
  #onChange;

  /** @param {(detail: {active: boolean, picture: string|null}) => void} onChange */
  constructor(onChange) {
    this.#onChange = onChange;
  }

  /** The other side's picture shows (frames arrive and it is not switched off). */
  get active() {
    return this.#active;
  }

  /** What the other side says it sends: "camera" | "screen" | "none", or null (not said). */
  get picture() {
    return this.#theirs;
  }

  /**
   * Follow a new peer connection (the first, or one made after a restart): everything known
   * about the previous one is forgotten. Call before the first offer or answer, so the
   * channel is part of the first negotiation.
   */
  attach(pc) {
    this.#pc = pc;
    this.#theirs = null;
    this.#frames = 0;
    this.#seenAt = 0;
    let channel = null;
    try {
      channel = pc.createDataChannel(CHANNEL, { negotiated: true, id: CHANNEL_ID });
    } catch {
      // No data channels here: frames alone decide.
    }
    this.#channel = channel;
    if (channel) {
      channel.addEventListener("open", () => channel === this.#channel && this.#tell());
      channel.addEventListener("message", (event) => channel === this.#channel && this.#heard(event.data));
    }
    this.#timer ??= setInterval(() => this.#read(), EVERY_MS);
    this.#update();
  }

  /** What this side sends now ("camera" | "screen" | "none"); the other side hears it. */
  say(picture) {
    if (!PICTURES.has(picture) || picture === this.#own) return;
    this.#own = picture;
    this.#tell();
  }

  stop() {
    clearInterval(this.#timer);
    this.#timer = null;
    this.#pc = null;
    this.#channel = null;
    this.#theirs = null;
    this.#seenAt = 0;
    this.#update();
  }

  #tell() {
    if (this.#channel?.readyState !== "open") return; // said again on "open"
    try {
      this.#channel.send(JSON.stringify({ picture: this.#own }));
    } catch {
      // closing: the next peer connection's channel says it
    }
  }

  #heard(data) {
    let picture;
    try {
      picture = JSON.parse(String(data))?.picture;
    } catch {
      return;
    }
    if (!PICTURES.has(picture)) return;
    // Back from "none": only frames that arrive from now on count (not the last ones that
    // were still in flight when the camera went off).
    if (this.#theirs === "none" && picture !== "none") this.#seenAt = 0;
    this.#theirs = picture;
    this.#update();
  }

  async #read() {
    const pc = this.#pc;
    if (!pc || this.#busy) return;
    this.#busy = true;
    try {
      let frames = 0;
      for (const receiver of pc.getReceivers()) {
        if (receiver.track?.kind !== "video") continue;
        (await receiver.getStats()).forEach((s) => {
          if (s.type === "inbound-rtp") frames += s.framesDecoded ?? 0;
        });
      }
      if (pc !== this.#pc) return;
      if (frames > this.#frames) this.#seenAt = Date.now();
      this.#frames = frames;
    } catch {
      // the peer connection closed mid-read; the next one is read next time
    } finally {
      this.#busy = false;
    }
    this.#update();
  }

  #update() {
    const arrived = this.#seenAt > 0;
    const fresh = arrived && Date.now() - this.#seenAt < STALL_MS;
    const active = Boolean(this.#pc) && this.#theirs !== "none" && (this.#theirs === "screen" ? arrived : fresh);
    if (active === this.#active && this.#theirs === this.#told) return;
    this.#active = active;
    this.#told = this.#theirs;
    this.#onChange({ active, picture: this.#theirs });
  }
}
