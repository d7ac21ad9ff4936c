// The socket under the WebSocket transport, reduced to what the transport uses, so that tests can give it a fake.

/** What the transport needs of a socket; tests give it a fake, production wraps Node's WebSocket. */
export interface SocketLike {
  send(text: string): void;
  close(code?: number, reason?: string): void;
}

export interface SocketEvents {
  onOpen(): void;
  onMessage(text: string): void;
  onClose(code: number, reason: string): void;
  onError(message: string): void;
}

export type SocketFactory = (url: string, events: SocketEvents) => SocketLike;

/** Node's built-in WebSocket (Node 22), adapted to SocketLike. */
export const nodeSocket: SocketFactory = (url, events) => {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const decoder = new TextDecoder();
  let opened = false;
  let closed = false;
  ws.addEventListener("open", () => {
    opened = true;
    events.onOpen();
  });
  ws.addEventListener("message", (ev) => {
    const data: unknown = ev.data;
    events.onMessage(typeof data === "string" ? data : data instanceof ArrayBuffer ? decoder.decode(data) : String(data));
  });
  ws.addEventListener("close", (ev) => {
    if (closed) return;
    closed = true;
    events.onClose(ev.code, ev.reason);
  });
  ws.addEventListener("error", (ev) => {
    events.onError("message" in ev && typeof ev.message === "string" ? ev.message : "connection error");
    // Node 22's WebSocket, refused before it opens (the mesh is down), fires `error` and never `close`: report the
    // close ourselves, so the transport redials with its backoff instead of waiting out the hello timeout.
    if (!opened && !closed) {
      closed = true;
      events.onClose(1006, "connection failed");
    }
  });
  return { send: (text) => ws.send(text), close: (code, reason) => ws.close(code, reason) };
};
