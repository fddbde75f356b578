// Guest shim for `embedded:io/socket/tcp`. The simulated MQTT client
// (mqtt-client.ts) is bridged to the broker at the MQTT level by the Node
// side, so no TCP socket is ever opened inside the simulated device; this
// class exists so that main.ts's import resolves and says so if used.

export default class TCP {
  constructor() {
    throw new Error('embedded:io/socket/tcp is not simulated (the MQTT client is bridged at the MQTT level)');
  }
}
