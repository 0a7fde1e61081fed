// The part of socket.io-client (web/vendor/socket.io.esm.min.js) that web/shared/socket.js
// uses, declared by hand so tsc checks our calls without reading the minified bundle.
export interface ManagerLike {
  on(event: string, listener: (...args: any[]) => void): this;
  off(event: string, listener?: (...args: any[]) => void): this;
  reconnection(value: boolean): this;
  opts: Record<string, any>;
}
export interface Socket {
  id: string | undefined;
  connected: boolean;
  disconnected: boolean;
  active: boolean;
  io: ManagerLike;
  auth: any;
  on(event: string, listener: (...args: any[]) => void): this;
  once(event: string, listener: (...args: any[]) => void): this;
  off(event?: string, listener?: (...args: any[]) => void): this;
  onAny(listener: (event: string, ...args: any[]) => void): this;
  offAny(listener?: (event: string, ...args: any[]) => void): this;
  emit(event: string, ...args: any[]): this;
  timeout(ms: number): Socket;
  emitWithAck(event: string, ...args: any[]): Promise<any>;
  volatile: Socket;
  connect(): this;
  disconnect(): this;
  close(): this;
}
export function io(uri?: string, options?: Record<string, any>): Socket;
export default io;
