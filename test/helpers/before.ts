// tap's `before` script (package.json): runs once before the first test file, and makes what the test files
// share so that they do not each pay for it, or race to make it, while they start.
import { pgliteTemplate } from './pglite-template.js';

await pgliteTemplate();
