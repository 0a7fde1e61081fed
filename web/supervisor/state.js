// @ts-check
// The board's data: a snapshot from board.snapshot, kept current by the server's change
// events (presence.changed, consultation.updated). No DOM here, so the rules stay readable.

const ON_BOARD = new Set(["requested", "queued", "offered", "active", "wrap_up"]);
const WAITING = new Set(["requested", "queued", "offered"]);
const CALL_KINDS = new Set(["voice", "video"]);
// Statuses after which today's figures have changed, and the server's time of that change.
const COUNTED = {
  queued: "queued_at",
  active: "accepted_at",
  closed: "closed_at",
  abandoned: "closed_at",
  missed: "closed_at",
};

export class BoardState {
  constructor() {
    this.generatedAt = null;
    this.timezone = "UTC";
    this.currency = "JPY";
    this.thresholds = { long_wait_seconds: 120, long_call_seconds: 1800 };
    this.teams = [];
    /** staff_id → {staff_id, display_name, display_name_en, team_id, status, since} */
    this.advisors = new Map();
    /** consultation id → the board's view of an open consultation */
    this.consultations = new Map();
    this.figures = null;
    this.teamId = "";
    // Local clock minus server clock, so durations do not drift with a wrong PC clock.
    this.skewMs = 0;
  }

  applySnapshot(snapshot) {
    this.generatedAt = snapshot.generated_at;
    this.skewMs = Date.now() - Date.parse(snapshot.generated_at);
    this.timezone = snapshot.timezone;
    this.currency = snapshot.currency;
    this.thresholds = snapshot.thresholds;
    this.teams = snapshot.teams;
    this.advisors = new Map(snapshot.advisors.map((a) => [a.staff_id, { ...a }]));
    this.consultations = new Map(snapshot.consultations.map((c) => [c.id, { ...c }]));
    if (!this.teamId) this.figures = snapshot.figures;
    if (this.teamId && !this.teams.some((t) => t.id === this.teamId)) this.teamId = "";
  }

  /** A presence.changed event. False when the advisor is not on the board (a new account):
   * the caller takes a fresh snapshot. */
  applyPresence(view) {
    const advisor = this.advisors.get(view.staff_id);
    if (!advisor) return false;
    advisor.status = view.status;
    advisor.since = view.since;
    return true;
  }

  /** A consultation.updated event. When today's figures have changed with it: the server's
   * time of the change (ISO), else null. */
  applyConsultation(c) {
    const known = this.consultations.get(c.id);
    if (ON_BOARD.has(c.status)) {
      const merged = { ...known, ...pick(c) };
      // Who an offer rings is in the snapshot only; it ends with the offer.
      merged.offered_to_id = c.status === "offered" ? known?.offered_to_id ?? null : null;
      this.consultations.set(c.id, merged);
    } else {
      this.consultations.delete(c.id);
    }
    const stamp = COUNTED[c.status];
    if (!stamp || (known && known.status === c.status)) return null;
    return c[stamp] ?? c.requested_at;
  }

  now() {
    return Date.now() - this.skewMs;
  }

  inTeam(advisorId) {
    if (!this.teamId) return true;
    return this.advisors.get(advisorId)?.team_id === this.teamId;
  }

  /** Advisors of the chosen team, in the order people scan a wall: by state, then name. */
  visibleAdvisors(nameOf = (a) => a.display_name) {
    const order = { busy: 0, available: 1, away: 2, offline: 3 };
    return [...this.advisors.values()]
      .filter((a) => this.inTeam(a.staff_id))
      .sort((a, b) => order[a.status] - order[b.status] || nameOf(a).localeCompare(nameOf(b)));
  }

  /** Waiting consultations, longest wait first. With a team chosen: those nominating one of
   * its advisors, or offered to one. */
  queue() {
    return [...this.consultations.values()]
      .filter((c) => WAITING.has(c.status))
      .filter((c) => !this.teamId || this.inTeam(c.nominated_advisor_id) || this.inTeam(c.offered_to_id))
      .sort((a, b) => startOfWait(a) - startOfWait(b));
  }

  /** Voice and video calls in progress, longest first. */
  calls() {
    return [...this.consultations.values()]
      .filter((c) => c.status === "active" && CALL_KINDS.has(c.kind) && this.inTeam(c.advisor_id))
      .sort((a, b) => Date.parse(a.accepted_at) - Date.parse(b.accepted_at));
  }

  /** What the advisor is doing: their call first, else their chats, else wrap-up. */
  currentOf(advisorId) {
    const mine = [...this.consultations.values()].filter((c) => c.advisor_id === advisorId);
    const call = mine.find((c) => c.status === "active" && CALL_KINDS.has(c.kind));
    if (call) return { kind: call.kind, since: call.accepted_at, count: 1 };
    const chats = mine.filter((c) => c.status === "active");
    if (chats.length) {
      const oldest = chats.reduce((a, b) => (Date.parse(a.accepted_at) < Date.parse(b.accepted_at) ? a : b));
      return { kind: "chat", since: oldest.accepted_at, count: chats.length };
    }
    const wrap = mine.find((c) => c.status === "wrap_up");
    if (wrap) return { kind: "wrap_up", since: wrap.ended_at ?? wrap.accepted_at, count: 1 };
    const offer = [...this.consultations.values()].find(
      (c) => c.status === "offered" && c.offered_to_id === advisorId,
    );
    if (offer) return { kind: "offer", since: null, count: 1 };
    return null;
  }

  /** The same rule as the server's (supervision/board.py): long waits and long calls. */
  alerts() {
    const now = this.now();
    const found = [];
    for (const c of this.consultations.values()) {
      let started;
      let limit;
      let kind;
      if (WAITING.has(c.status)) {
        started = startOfWait(c);
        limit = this.thresholds.long_wait_seconds;
        kind = "long_wait";
      } else if (c.status === "active" && CALL_KINDS.has(c.kind) && c.accepted_at) {
        started = Date.parse(c.accepted_at);
        limit = this.thresholds.long_call_seconds;
        kind = "long_call";
      } else {
        continue;
      }
      const seconds = Math.floor((now - started) / 1000);
      const advisorId = kind === "long_call" ? c.advisor_id : c.nominated_advisor_id;
      if (seconds >= limit && (!this.teamId || this.inTeam(advisorId))) {
        found.push({ kind, id: c.id, advisorId, consultation: c, seconds });
      }
    }
    return found.sort((a, b) => b.seconds - a.seconds);
  }

  secondsSince(iso) {
    if (!iso) return null;
    return Math.max(0, Math.floor((this.now() - Date.parse(iso)) / 1000));
  }
}

export function startOfWait(c) {
  return Date.parse(c.queued_at ?? c.requested_at);
}

function pick(c) {
  const fields = [
    "id", "kind", "status", "advisor_id", "nominated_advisor_id", "wait_for_nominated", "skills",
    "language", "requested_at", "queued_at", "accepted_at", "ended_at",
  ];
  return Object.fromEntries(fields.filter((f) => f in c).map((f) => [f, c[f]]));
}

/** 75 → "1:15", 3725 → "1:02:05". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}
