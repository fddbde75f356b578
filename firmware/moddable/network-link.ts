// Wi-Fi station and SNTP, without ever blocking the gate.
//
// Moddable's own network setup (build/devices/esp32/setup/network.js, run
// before main when config.ssid is set) holds main() back until Wi-Fi is up;
// a gate must boot and decide offline, so the manifest leaves config.ssid
// unset and this class connects in the background instead, from
// config.wifi_ssid / wifi_password, with the classic `wifi` module
// (modules/network/wifi/esp32): `new WiFi({ssid, password}, onNotify)`
// connects and reports "connect", "gotIP", "lostIP", "disconnect"; after a
// disconnect the documented way to retry is WiFi.connect(options) again.
//
// SNTP (modules/network/sntp): `new SNTP({host}, callback)`; callback
// (SNTP.time, seconds) on success (the instance then closes itself),
// (SNTP.retry) while retrying, (SNTP.error, message) when it gives up. On
// success onTime(seconds) is called (main.ts sets the system time and marks
// the clock trusted); the time is refreshed every refreshMs.

import SNTP from 'sntp';
import Timer from 'timer';
import WiFi from 'wifi';

export interface NetworkLinkOptions {
  /** Station credentials; without an ssid the link does nothing (e.g. a board without Wi-Fi use). */
  readonly ssid?: string;
  readonly password?: string;
  /** SNTP server name or address; null: no SNTP. */
  readonly sntp: string | null;
  /** Trusted network time, UTC seconds. */
  readonly onTime: (seconds: number) => void;
  /** Link state changes, for the console. */
  readonly onState?: (state: 'connecting' | 'connected' | 'ip' | 'disconnected') => void;
  readonly reconnectMs?: number;
  readonly sntpRetryMs?: number;
  readonly sntpRefreshMs?: number;
}

export class NetworkLink {
  readonly #o: NetworkLinkOptions;
  #wifi: WiFi | null = null;
  #reconnect: Timer | null = null;
  #sntpTimer: Timer | null = null;
  #sntpBusy = false;
  #hasIP = false;
  #closed = false;

  constructor(options: NetworkLinkOptions) {
    this.#o = options;
    if (options.ssid === undefined || options.ssid === '') return;
    options.onState?.('connecting');
    this.#wifi = new WiFi(this.#credentials(), (message) => this.#onWiFi(message));
  }

  get hasIP(): boolean {
    return this.#hasIP;
  }

  close(): void {
    this.#closed = true;
    if (this.#reconnect !== null) Timer.clear(this.#reconnect);
    if (this.#sntpTimer !== null) Timer.clear(this.#sntpTimer);
    this.#reconnect = null;
    this.#sntpTimer = null;
    this.#wifi?.close(); // stops notifications; the station stays associated
    this.#wifi = null;
  }

  #credentials(): { ssid: string; password?: string } {
    const o = this.#o;
    return { ssid: o.ssid ?? '', ...(o.password !== undefined ? { password: o.password } : {}) };
  }

  #onWiFi(message: string): void {
    if (this.#closed) return;
    switch (message) {
      case WiFi.connected:
        this.#o.onState?.('connected');
        break;
      case WiFi.gotIP:
        this.#hasIP = true;
        this.#o.onState?.('ip');
        this.#syncTime(0);
        break;
      case WiFi.lostIP:
        this.#hasIP = false;
        break;
      case WiFi.disconnected:
        this.#hasIP = false;
        this.#o.onState?.('disconnected');
        if (this.#reconnect === null) {
          this.#reconnect = Timer.set(() => {
            this.#reconnect = null;
            if (this.#closed) return;
            this.#o.onState?.('connecting');
            WiFi.connect(this.#credentials());
          }, this.#o.reconnectMs ?? 5000);
        }
        break;
      default:
        break;
    }
  }

  /** Asks for the time after delayMs (one request at a time). */
  #syncTime(delayMs: number): void {
    const host = this.#o.sntp;
    if (host === null || this.#closed) return;
    if (this.#sntpTimer !== null) Timer.clear(this.#sntpTimer);
    this.#sntpTimer = Timer.set(() => {
      this.#sntpTimer = null;
      if (this.#sntpBusy || !this.#hasIP || this.#closed) return;
      this.#sntpBusy = true;
      try {
        new SNTP({ host }, (message, value) => {
          if (message === SNTP.retry) return;
          this.#sntpBusy = false;
          if (this.#closed) return;
          if (message === SNTP.time && typeof value === 'number') {
            this.#o.onTime(value);
            this.#syncTime(this.#o.sntpRefreshMs ?? 6 * 3600_000);
          } else this.#syncTime(this.#o.sntpRetryMs ?? 60_000);
        });
      } catch {
        this.#sntpBusy = false;
        this.#syncTime(this.#o.sntpRetryMs ?? 60_000);
      }
    }, delayMs);
  }
}
