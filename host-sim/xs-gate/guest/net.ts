// Guest shim for Moddable's `net` module: Net.resolve(name, callback) looks
// the name up on the Node side (dns.lookup) and answers on a later turn;
// Net.get() answers what a station on the simulated Wi-Fi would.

import { emit, net } from './runtime.js';

const Net = {
  resolve(name: string, callback: (name: string, address?: string) => void): void {
    if (!net.wifiUp) throw new Error('no network');
    const req = net.nextReq++;
    net.resolves.set(req, (address) => callback(name, address ?? undefined));
    emit({ op: 'resolve', req, host: name });
  },
  get(what: string): string | string[] | number | undefined {
    switch (what) {
      case 'IP':
        return net.wifiUp ? '10.0.0.2' : undefined;
      case 'MAC':
        return '02:00:00:00:00:01';
      case 'SSID':
        return 'simulated';
      case 'RSSI':
        return -50;
      case 'DNS':
        return ['10.0.0.1'];
      default:
        return undefined;
    }
  },
};

export default Net;
