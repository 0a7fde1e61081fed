// @ts-check
// Helpers for live call monitoring's browser-to-browser voice (a supervisor's whisper or
// barge-in): the ICE servers livedesk configures (never a public default) and waiting for ICE
// gathering, so an offer or answer carries all its candidates and nothing trickles.

const GATHER_TIMEOUT_MS = 3000;

/** GET /api/v1/ice-servers (with the visitor token for shoppers, the cookie for staff). */
export async function iceServers(token) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const response = await fetch("/api/v1/ice-servers", { headers, credentials: "same-origin" });
    if (!response.ok) return [];
    const list = (await response.json()).ice_servers;
    return (Array.isArray(list) ? list : [])
      .filter((server) => server && server.urls)
      .map((server) => {
        const clean = { urls: server.urls };
        if (server.username != null) clean.username = server.username;
        if (server.credential != null) clean.credential = server.credential;
        return clean;
      });
  } catch {
    return [];
  }
}

export function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== "complete") return;
      pc.removeEventListener("icegatheringstatechange", done);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      pc.removeEventListener("icegatheringstatechange", done);
      resolve();
    }, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", done);
  });
}
