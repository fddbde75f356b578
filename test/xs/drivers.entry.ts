// XS side of the reader decoder test: decodes the streams (hex chunks) with
// the same runner the Node side uses and returns reads, rejects and stats.
import { runStreams, type StreamCase } from '../helpers/drivers.js';
import { serveJson } from '../../host-sim/xs/guest/serve.js';

serveJson((req: { streams: StreamCase[] }) => runStreams(req.streams));
