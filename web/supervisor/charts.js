// @ts-check
// Today's charts (uPlot, vendored): consultations per hour and the average wait per hour.
// Each chart's container is role="img" with a one-sentence summary; the numbers themselves
// are in the table under it (details "as a table"), so nothing is only in the picture.
import uPlot from "/vendor/uPlot.esm.js";
import { t } from "/shared/i18n.js";

const COLOURS = {
  offered: "#9aa6d8",
  answered: "#2c3e9c",
  abandoned: "#b3261e",
  wait: "#0f766e",
};
const HEIGHT = 220;

function hourLabel(hour) {
  return `${String(hour).padStart(2, "0")}:00`;
}

/** Hours worth showing: from the first with anything (or 8:00) to the last (or 20:00). */
function span(hours) {
  const busy = hours.filter((h) => h.offered > 0).map((h) => h.hour);
  const first = Math.min(8, ...busy);
  const last = Math.max(20, ...busy);
  return hours.filter((h) => h.hour >= first && h.hour <= last);
}

class Chart {
  constructor(el) {
    this.el = el;
    this.plot = null;
    this.key = "";
  }

  width() {
    return Math.max(280, Math.floor(this.el.clientWidth || this.el.parentElement.clientWidth - 32));
  }

  draw(options, data) {
    // Series names are in the options: a new language means a new plot.
    const key = JSON.stringify(options.series.map((s) => s.label ?? ""));
    if (this.plot && this.key === key) {
      this.plot.setData(data);
      return;
    }
    this.plot?.destroy();
    this.key = key;
    this.plot = new uPlot({ ...options, width: this.width(), height: HEIGHT }, data, this.el);
  }

  resize() {
    this.plot?.setSize({ width: this.width(), height: HEIGHT });
  }
}

function axes(yLabel, yValues) {
  const axis = { stroke: "#1c2033", grid: { stroke: "#e3e6f0" }, ticks: { stroke: "#d9dce8" } };
  return [
    { ...axis, values: (_u, values) => values.map((v) => (Number.isInteger(v) ? hourLabel(v) : "")) },
    { ...axis, label: yLabel, values: yValues, size: 60 },
  ];
}

export class Charts {
  constructor(volumeEl, waitEl) {
    this.volume = new Chart(volumeEl);
    this.wait = new Chart(waitEl);
    this.figures = null;
    window.addEventListener("resize", () => {
      this.volume.resize();
      this.wait.resize();
    });
  }

  render(figures) {
    this.figures = figures;
    if (!figures) return;
    const hours = span(figures.hours);
    const xs = hours.map((h) => h.hour);
    const bars = (size) => uPlot.paths.bars({ size: [size, 48] });
    const hoursScale = { time: false, range: (_u, min, max) => [min - 0.5, max + 0.5] };
    const whole = (_u, values) => values.map((v) => (Number.isInteger(v) ? String(v) : ""));
    this.volume.draw(
      {
        scales: { x: hoursScale, y: { range: (_u, _min, max) => [0, Math.max(4, max + 1)] } },
        axes: axes(t("supervisor.chart.count"), whole),
        legend: { live: false },
        cursor: { show: false },
        series: [
          {},
          {
            label: t("supervisor.kpi.offered"),
            stroke: COLOURS.offered,
            fill: COLOURS.offered,
            paths: bars(0.8),
            points: { show: false },
          },
          {
            label: t("supervisor.kpi.answered"),
            stroke: COLOURS.answered,
            fill: COLOURS.answered,
            paths: bars(0.45),
            points: { show: false },
          },
          {
            // Marks only, at the hours someone left: a line along zero would hide the bars.
            label: t("supervisor.kpi.abandoned"),
            stroke: COLOURS.abandoned,
            fill: COLOURS.abandoned,
            paths: () => null,
            points: { show: true, size: 12, fill: COLOURS.abandoned },
          },
        ],
      },
      [xs, hours.map((h) => h.offered), hours.map((h) => h.answered), hours.map((h) => h.abandoned || null)],
    );
    this.wait.draw(
      {
        scales: { x: hoursScale, y: { range: (_u, _min, max) => [0, Math.max(60, (max ?? 0) * 1.2)] } },
        axes: axes(t("supervisor.chart.seconds"), (_u, values) => values.map((v) => String(Math.round(v)))),
        legend: { live: false },
        cursor: { show: false },
        series: [
          {},
          {
            label: t("supervisor.kpi.average_wait"),
            stroke: COLOURS.wait,
            width: 3,
            spanGaps: false,
            points: { show: true, size: 8, fill: COLOURS.wait },
          },
        ],
      },
      [xs, hours.map((h) => h.average_wait_seconds)],
    );
    this.volume.el.setAttribute("aria-label", volumeSummary(figures));
    this.wait.el.setAttribute("aria-label", waitSummary(figures));
  }
}

function volumeSummary(figures) {
  const busiest = figures.hours.reduce((a, b) => (b.offered > a.offered ? b : a), figures.hours[0]);
  return t("supervisor.chart.volume_summary", {
    offered: figures.offered,
    answered: figures.answered,
    abandoned: figures.abandoned,
    hour: busiest && busiest.offered ? hourLabel(busiest.hour) : "—",
  });
}

function waitSummary(figures) {
  const waits = figures.hours.filter((h) => h.average_wait_seconds !== null);
  if (!waits.length) return t("supervisor.chart.wait_empty");
  const worst = waits.reduce((a, b) => (b.average_wait_seconds > a.average_wait_seconds ? b : a));
  return t("supervisor.chart.wait_summary", {
    hour: hourLabel(worst.hour),
    seconds: Math.round(worst.average_wait_seconds),
  });
}

/** The charts' numbers as table rows (the text alternative). */
export function chartRows(figures) {
  const hours = figures ? span(figures.hours) : [];
  return {
    volume: hours.map((h) => [hourLabel(h.hour), h.offered, h.answered, h.abandoned]),
    wait: hours.map((h) => [
      hourLabel(h.hour),
      h.average_wait_seconds === null ? "—" : `${Math.round(h.average_wait_seconds)}`,
    ]),
  };
}
