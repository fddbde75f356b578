// Guest shim for Moddable's classic `wifi` module, station mode: a new WiFi
// (or WiFi.connect) reports "connect" after 20 ms and "gotIP" 20 ms later
// while the simulated network is up (else "disconnect": the association
// failed); when Node takes it down, "lostIP" and "disconnect"; WiFi.connect()
// again retries. close() stops notifications.

import { later, net } from './runtime.js';

type Message = 'connect' | 'gotIP' | 'lostIP' | 'disconnect';
const stations = new Set<WiFi>();
let associated = false;

function associate(): void {
  later('wifi connect', () => {
    if (associated) return;
    if (!net.wifiUp) {
      for (const s of stations) s.notify('disconnect'); // association failed
      return;
    }
    associated = true;
    for (const s of stations) s.notify('connect');
    later('wifi gotIP', () => {
      if (!associated) return;
      for (const s of stations) s.notify('gotIP');
    }, 20);
  }, 20);
}

net.wifiListeners.add((up) => {
  if (up || !associated) return;
  associated = false;
  for (const s of stations) s.notify('lostIP');
  for (const s of stations) s.notify('disconnect');
});

export default class WiFi {
  static readonly gotIP = 'gotIP';
  static readonly lostIP = 'lostIP';
  static readonly connected = 'connect';
  static readonly disconnected = 'disconnect';
  static readonly station_connected = 'station_connect';
  static readonly station_disconnected = 'station_disconnect';
  static readonly Mode = { off: -5, none: 0, station: 1, accessPoint: 2 };
  static mode = 1;

  readonly #callback: ((message: Message) => void) | undefined;

  constructor(options?: { ssid: string; password?: string }, callback?: (message: Message) => void) {
    this.#callback = callback;
    stations.add(this);
    if (options !== undefined) WiFi.connect(options);
  }

  /** Called by the simulation. */
  notify(message: Message): void {
    this.#callback?.(message);
  }

  close(): void {
    stations.delete(this);
  }

  static connect(options?: { ssid: string; password?: string }): void {
    if (options === undefined || associated) return;
    associate();
  }

  static disconnect(): void {
    if (!associated) return;
    associated = false;
    for (const s of stations) s.notify('disconnect');
  }

  static scan(): void {
    throw new Error('WiFi.scan is not simulated');
  }

  static accessPoint(): void {
    throw new Error('WiFi.accessPoint is not simulated');
  }
}

/** The station holds an IP address (the MQTT shim's socket needs one). */
export function hasIP(): boolean {
  return associated && net.wifiUp;
}
