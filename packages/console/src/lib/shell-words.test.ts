import assert from 'node:assert/strict';
import { test } from 'node:test';
import { joinCommandLine, splitCommandLine } from './shell-words.js';

test('a command line splits into argv like a shell would, without expansion', () => {
  assert.deepEqual(splitCommandLine('python3 -m http.server 8080'), [
    'python3',
    '-m',
    'http.server',
    '8080',
  ]);
  assert.deepEqual(splitCommandLine(`  sh -c 'echo "$HOME" && sleep 1'  `), [
    'sh',
    '-c',
    'echo "$HOME" && sleep 1',
  ]);
  assert.deepEqual(splitCommandLine('echo "a \\"b\\" c" d\\ e \'\''), [
    'echo',
    'a "b" c',
    'd e',
    '',
  ]);
  assert.deepEqual(splitCommandLine(''), []);
});

test('an unclosed quote is refused with a reason', () => {
  assert.throws(() => splitCommandLine('echo "oops'), /double quote is not closed/);
  assert.throws(() => splitCommandLine("echo 'oops"), /single quote is not closed/);
});

test('joining quotes only what needs it and splits back to the same argv', () => {
  const argv = ['node', 'server.js', '--name', "it's here", '', 'a b', '--port=8080'];
  const line = joinCommandLine(argv);
  assert.equal(line, `node server.js --name 'it'\\''s here' '' 'a b' --port=8080`);
  assert.deepEqual(splitCommandLine(line), argv);
});
