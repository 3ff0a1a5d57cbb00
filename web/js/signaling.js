/**
 * The WebSocket client for the hearing protocol (signaling/PROTOCOL.md).
 *
 * One `SignalingChannel` is one socket. It does no protocol logic: it parses JSON text frames into
 * objects and emits them, and reports the close once. Reconnecting is done by the session, which makes a
 * new channel (and a new peer connection) each time, so no state leaks between attempts.
 */

/** Client messages above this are refused by the server (`too-large`); we refuse them before sending. */
export const MAX_MESSAGE_BYTES = 128 * 1024;

/** `ws://host/ws` or `wss://host/ws`, matching how the page itself was loaded. */
export function signalingUrl(loc = location) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}/ws`;
}

/**
 * Events (all `CustomEvent`, payload in `detail`):
 * - `open`: the socket is open;
 * - `message`: `detail` is one parsed server message (an object with a string `type`);
 * - `close`: `detail` is `{code, reason, wasClean}`; fired exactly once, also after `close()`.
 */
export class SignalingChannel extends EventTarget {
  constructor(url = signalingUrl()) {
    super();
    this.url = url;
    this.closed = false;
    this.ws = new WebSocket(url);
    this.ws.addEventListener("open", () => this.#emit("open"));
    this.ws.addEventListener("message", (event) => this.#onMessage(event));
    this.ws.addEventListener("close", (event) =>
      this.#finish({ code: event.code, reason: event.reason, wasClean: event.wasClean }),
    );
    // An "error" event is always followed by "close"; the close carries what we act on.
  }

  get isOpen() {
    return !this.closed && this.ws.readyState === WebSocket.OPEN;
  }

  /** Send one message; returns false (and logs) if the socket is not open or the message is too big. */
  send(message) {
    if (!this.isOpen) {
      console.debug("[signaling] not sent, socket not open:", message.type);
      return false;
    }
    const text = JSON.stringify(message);
    // UTF-16 length is a lower bound of the UTF-8 size; count exactly only when it could matter.
    if (text.length * 3 > MAX_MESSAGE_BYTES && new TextEncoder().encode(text).length > MAX_MESSAGE_BYTES) {
      console.error("[signaling] message too large, not sent:", message.type, text.length);
      return false;
    }
    this.ws.send(text);
    return true;
  }

  /**
   * Close the socket from our side. Messages already passed to `send()` are still delivered: the
   * WebSocket close frame is queued behind them, so `send(leave); close()` is safe.
   */
  close(code = 1000, reason = "") {
    if (this.ws.readyState === WebSocket.CONNECTING || this.ws.readyState === WebSocket.OPEN) {
      this.ws.close(code, reason);
    }
    this.#finish({ code, reason, wasClean: true });
  }

  #onMessage(event) {
    if (this.closed) return;
    if (typeof event.data !== "string") {
      console.warn("[signaling] ignoring binary frame from server");
      return;
    }
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (err) {
      console.warn("[signaling] ignoring non-JSON frame from server", err);
      return;
    }
    if (message === null || typeof message !== "object" || typeof message.type !== "string") {
      console.warn("[signaling] ignoring message without a type", message);
      return;
    }
    this.dispatchEvent(new CustomEvent("message", { detail: message }));
  }

  #emit(type, detail = null) {
    if (!this.closed) this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #finish(detail) {
    if (this.closed) return;
    this.closed = true;
    this.dispatchEvent(new CustomEvent("close", { detail }));
  }
}
