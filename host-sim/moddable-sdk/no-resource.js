// "Resource" for the x-cli-lin programs (test/sdk/tls-check.ts): an x-cli
// platform has no resource map (mcGetResource exists on mc platforms only),
// so every name is missing, and this throws what the SDK's Resource throws for
// a name a build does not hold (modules/files/resource/Resource.c). ssl/cert
// imports Resource and opens "ca.ski" only when the broker's chain does not end
// at the registered CA; the gate's build holds no CA store either (manifest.json).
export default class Resource {
	constructor(path) {
		throw new URIError(`Resource not found: ${path}`);
	}
	static exists() {
		return false;
	}
}
