// Runs a TypeScript worker from source (npm start, tests): tsx's loader is
// registered in this thread, then the worker module named by the parent is
// imported. The built package starts its .js workers directly.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
