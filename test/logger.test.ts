// The process's log: readable lines on a terminal in development, JSON lines everywhere else and always in
// production, and censored either way.
import { Writable } from 'node:stream';
import t from 'tap';
import { createProcessLogger, type LogOutput } from '../src/logger.js';

/** A stand-in for stdout that keeps what is written; `isTTY` as a terminal (or a pipe) would say. */
function output(isTTY: boolean): LogOutput & { text(): string } {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      text += String(chunk);
      callback();
    },
  });
  return Object.assign(stream, { isTTY, text: () => text });
}

t.test('development on a terminal: pretty lines, still censored', async (t) => {
  const out = output(true);
  const log = await createProcessLogger({ logLevel: 'info', env: 'development' }, out);
  log.info({ user: 'ada', token: 'secret-token-value' }, 'signed in');
  // eslint-disable-next-line no-control-regex -- the terminal's color codes
  const text = out.text().replace(/\u001b\[\d+m/g, '');
  t.not(text, out.text(), 'in color');
  t.match(text, /INFO: signed in/);
  t.match(text, /user: "ada"/);
  t.notMatch(text, /^\{/, 'not JSON');
  t.notMatch(text, /secret-token-value/, 'the censor ran first');
  t.match(text, /\[REDACTED\]/);
});

for (const [env, isTTY] of [
  ['production', true],
  ['development', false],
  ['test', false],
] as const) {
  t.test(`${env}${isTTY ? ' on a terminal' : ' into a pipe'}: JSON lines`, async (t) => {
    const out = output(isTTY);
    const log = await createProcessLogger({ logLevel: 'info', env }, out);
    log.info({ token: 'secret-token-value' }, 'signed in');
    const line = JSON.parse(out.text().trim()) as { msg: string; token: string; level: number };
    t.match(line, { msg: 'signed in', token: '[REDACTED]', level: 30 });
  });
}
