// XS side of the protocol vector test: runs the shared vector runner on XS.
import { fromHex, nobleCrypto } from '../../protocol/index.js';
import { runVectorFiles, type VectorFile } from '../../protocol/vectors.js';
import { serveJson } from '../../host-sim/xs/guest/serve.js';

serveJson((req: { files: VectorFile[]; keys: string[] }) => runVectorFiles(req.files, nobleCrypto, req.keys.map(fromHex)));
