// @ts-check
// The device check before joining: camera preview, microphone level meter, camera and
// microphone choice. It holds its own getUserMedia stream (released before the call engine
// takes the devices), so looking at yourself does not start the call.

const LEVEL_EVERY_MS = 250;

/** Devices by kind, from the engine when there is one (the contract's call.devices()). */
export async function listDevices(engine) {
  if (engine?.devices) {
    try {
      return await engine.devices();
    } catch {
      // fall back to the browser's own list
    }
  }
  const grouped = { audioinput: [], videoinput: [], audiooutput: [] };
  if (!navigator.mediaDevices?.enumerateDevices) return grouped;
  for (const device of await navigator.mediaDevices.enumerateDevices()) {
    grouped[device.kind]?.push(device);
  }
  return grouped;
}

/** Fill a <select> with devices, keeping the chosen one; labels are empty before permission. */
export function fillSelect(select, devices, selectedId, unnamed) {
  const options = devices.map((device, index) => {
    const option = document.createElement("option");
    option.value = device.deviceId;
    option.textContent = device.label || unnamed(index + 1);
    option.selected = device.deviceId === selectedId;
    return option;
  });
  select.replaceChildren(...options);
  select.disabled = options.length === 0;
}

/** The device a live stream actually uses, so the select shows it. */
export function trackDeviceId(stream, kind) {
  const track = kind === "audioinput" ? stream?.getAudioTracks()[0] : stream?.getVideoTracks()[0];
  return track?.getSettings?.().deviceId ?? "";
}

export function constraint(deviceId) {
  return deviceId ? { deviceId: { exact: deviceId } } : true;
}

export class Preview {
  constructor({ video, meter, meterFill }) {
    this.video = video;
    this.meter = meter;
    this.meterFill = meterFill;
    this.stream = null;
    this.audio = null; // {context, analyser, source, frame}
    this.lastAria = 0;
    this.runs = 0; // each start() or stop() makes earlier, still-opening starts void
  }

  /** Open camera (when wanted) and microphone; throws the getUserMedia error (NotAllowedError…). */
  async start({ video, cameraId, micId }) {
    this.stop();
    const run = ++this.runs;
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: constraint(micId),
      video: video ? constraint(cameraId) : false,
    });
    if (run !== this.runs) {
      // Stopped (or started again with other devices) while the browser was opening these.
      for (const track of stream.getTracks()) track.stop();
      return null;
    }
    this.stream = stream;
    this.video.srcObject = video ? stream : null;
    this.video.play?.().catch(() => {});
    this.startMeter(stream);
    return stream;
  }

  startMeter(stream) {
    const AudioContextClass = window.AudioContext ?? window.webkitAudioContext;
    if (!AudioContextClass || stream.getAudioTracks().length === 0) return;
    const context = new AudioContextClass();
    const source = context.createMediaStreamSource(stream);
    const analyser = context.createAnalyser();
    analyser.fftSize = 512;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const audio = { context, analyser, source, frame: 0 };
    this.audio = audio;
    // Browsers may start the context suspended until the person interacts with the page.
    const resume = () => context.state === "suspended" && context.resume().catch(() => {});
    resume();
    document.addEventListener("pointerdown", resume, { once: true });
    document.addEventListener("keydown", resume, { once: true });
    const tick = () => {
      if (this.audio !== audio) return;
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const value of samples) sum += value * value;
      const rms = Math.sqrt(sum / samples.length);
      // Speech sits around 0.02–0.2 RMS: a square root spreads that over the bar.
      const level = Math.min(1, Math.sqrt(rms * 6));
      this.meterFill.style.width = `${Math.round(level * 100)}%`;
      const now = performance.now();
      if (now - this.lastAria > LEVEL_EVERY_MS) {
        this.meter.setAttribute("aria-valuenow", String(Math.round(level * 100)));
        this.lastAria = now;
      }
      audio.frame = requestAnimationFrame(tick);
    };
    audio.frame = requestAnimationFrame(tick);
  }

  /**
   * Hand the live stream over (to the call engine) instead of stopping it: the camera light
   * stays on and the chosen devices carry into the call. Null when there is nothing to hand.
   */
  take(video) {
    const stream = this.stream;
    if (!stream || stream.getAudioTracks().length === 0) return null;
    if (video && stream.getVideoTracks().length === 0) return null;
    if (!video) {
      for (const track of stream.getVideoTracks()) {
        track.stop();
        stream.removeTrack(track);
      }
    }
    this.stream = null;
    this.stop();
    return stream;
  }

  stop() {
    this.runs += 1;
    if (this.audio) {
      cancelAnimationFrame(this.audio.frame);
      this.audio.source.disconnect();
      this.audio.context.close().catch(() => {});
      this.audio = null;
    }
    this.meterFill.style.width = "0%";
    this.meter.setAttribute("aria-valuenow", "0");
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
    this.video.srcObject = null;
  }
}

/**
 * Call ``onGranted`` when the camera or microphone permission turns to "granted" (the person
 * allowed it in the browser's site settings after a block), where the browser can tell us.
 */
export async function watchPermissions(onGranted) {
  if (!navigator.permissions?.query) return;
  for (const name of /** @type {PermissionName[]} */ (["camera", "microphone"])) {
    try {
      const status = await navigator.permissions.query({ name });
      status.addEventListener("change", () => {
        if (status.state === "granted") onGranted();
      });
    } catch {
      // Firefox does not know "camera" as a permission name: the retry button still works.
    }
  }
}
