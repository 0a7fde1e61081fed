// The part of uPlot (web/vendor/uPlot.esm.js) the supervisor board's charts use, declared by
// hand (uPlot's own .d.ts is not vendored).
declare class uPlot {
  constructor(options: Record<string, any>, data: any[], target?: HTMLElement);
  setData(data: any[], resetScales?: boolean): void;
  setSize(size: { width: number; height: number }): void;
  setSeries(index: number, options: Record<string, any>): void;
  destroy(): void;
  root: HTMLElement;
  data: any[];
  [key: string]: any;
  static paths: { bars(options?: Record<string, any>): any; [name: string]: any };
}
export default uPlot;
