// Guest shim for Moddable's `sntp` module: the answer (network time: the
// init command's ntpMs + virtual time) comes 10 ms after the request while
// the network is up; otherwise two retries 1 s apart, then an error.

import { clock, later, net } from './runtime.js';

type Callback = (message: number, value?: number | string) => void;

export default class SNTP {
  static readonly time = 1;
  static readonly retry = 2;
  static readonly error = -1;

  constructor(options: { host: string }, callback: Callback) {
    if (typeof options?.host !== 'string' || options.host === '') throw new Error('host required');
    let tries = 0;
    const attempt = (): void => {
      later('sntp', () => {
        if (net.wifiUp) return callback(SNTP.time, Math.floor((net.ntpMs + clock.now) / 1000));
        if (++tries < 3) {
          callback(SNTP.retry);
          attempt();
        } else callback(SNTP.error, 'no answer');
      }, net.wifiUp ? 10 : 1000);
    };
    attempt();
  }
}
