#!/usr/bin/env node
// The installed command runs the compiled JavaScript (dist/, built by `npm run build`, and by `npm pack`).
import '../dist/cli.js';
