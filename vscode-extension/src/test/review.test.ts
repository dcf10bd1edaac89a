// The review's pure logic: the line diff, what the region shows while streaming and after,
// and the exact text each mix of decisions leaves. `npm test`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffLines, splitLines } from '../lineDiff';
import { applyToRegion, lineReplacement, regionAfterChanges, ReviewModel } from '../reviewModel';
import { SyncHold } from '../syncHold';

const ORIGINAL = ['def check(value):\n', '    value = int(value)\n', '    return None\n', '    print(value)\n'];
const REWRITE = 'def check(value):\n    return None\n    return None\n    return None\n';

void test('diffLines: two hunks around an unchanged line', () => {
  assert.deepEqual(diffLines(['a\n', 'L\n', 'b\n'], ['L\n', 'L\n', 'L\n']), [
    { kind: 'hunk', removed: ['a\n'], added: [] },
    { kind: 'same', lines: ['L\n'] },
    { kind: 'hunk', removed: ['b\n'], added: ['L\n', 'L\n'] },
  ]);
});

void test('diffLines: identical, all new, all gone', () => {
  assert.deepEqual(diffLines(['a\n'], ['a\n']), [{ kind: 'same', lines: ['a\n'] }]);
  assert.deepEqual(diffLines([], ['a\n']), [{ kind: 'hunk', removed: [], added: ['a\n'] }]);
  assert.deepEqual(diffLines(['a\n'], []), [{ kind: 'hunk', removed: ['a\n'], added: [] }]);
});

void test('diffLines rebuilds both sides, for any pair', () => {
  const pool = ['x\n', 'y\n', 'z\n', '\n'];
  let seed = 7;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let k = 0; k < 300; k++) {
    const a = Array.from({ length: rand(7) }, () => pool[rand(4)] ?? '');
    const b = Array.from({ length: rand(7) }, () => pool[rand(4)] ?? '');
    const segs = diffLines(a, b);
    const left = segs.flatMap((s) => (s.kind === 'same' ? s.lines : s.removed));
    const right = segs.flatMap((s) => (s.kind === 'same' ? s.lines : s.added));
    assert.deepEqual(left, a);
    assert.deepEqual(right, b);
    for (let i = 1; i < segs.length; i++) {
      assert.notEqual(segs[i]?.kind, segs[i - 1]?.kind, 'neighbouring segments of one kind');
    }
  }
});

void test('splitLines keeps endings, LSP style', () => {
  assert.deepEqual(splitLines('a\nb\r\nc\rd'), ['a\n', 'b\r\n', 'c\r', 'd']);
  assert.deepEqual(splitLines(''), []);
});

function finished(): ReviewModel {
  const m = new ReviewModel(ORIGINAL, '\n');
  m.finish(REWRITE);
  return m;
}

void test('review: the shown region marks removed and added lines, unchanged ones plain', () => {
  const m = finished();
  assert.equal(m.hunkCount, 2);
  const r = m.render();
  assert.deepEqual(r.lines, [
    'def check(value):\n',
    '    value = int(value)\n',
    '    return None\n',
    '    print(value)\n',
    '    return None\n',
    '    return None\n',
  ]);
  assert.deepEqual(r.marks, ['same', 'removed', 'same', 'removed', 'added', 'added']);
  assert.deepEqual([...r.hunkStarts], [[0, 1], [1, 3]]);
});

void test('review: Accept All is the rewrite, Reject All the original, a mix is that mix', () => {
  const all = finished();
  all.decideAll('accepted');
  assert.equal(all.result(), REWRITE);

  const none = finished();
  none.decideAll('rejected');
  assert.equal(none.result(), ORIGINAL.join(''));

  const mix = finished();
  mix.decide(0, 'accepted');
  assert.deepEqual(mix.pendingHunks(), [1]);
  assert.deepEqual(mix.render().marks, ['same', 'same', 'removed', 'added', 'added']);
  mix.decide(1, 'rejected');
  assert.equal(mix.result(), 'def check(value):\n    return None\n    print(value)\n');
  assert.deepEqual(mix.render().lines.join(''), mix.result());

  const other = finished();
  other.decide(0, 'rejected');
  other.decide(1, 'accepted');
  assert.equal(other.result(), 'def check(value):\n    value = int(value)\n    return None\n    return None\n    return None\n');
  assert.throws(() => {
    other.decide(1, 'rejected');
  }, /not pending/);
});

void test('review while streaming: lines not reached yet stay plain, a partial line shows as added', () => {
  const m = new ReviewModel(ORIGINAL, '\n');
  m.stream('def check(value):\n    return No', 0.3);
  const r = m.render();
  // covered 0.3 of 4 lines: the first line is reached (and unchanged); the rest wait below
  assert.deepEqual(r.lines, ['def check(value):\n', '    return No\n', ...ORIGINAL.slice(1)]);
  assert.deepEqual(r.marks, ['same', 'added', 'same', 'same', 'same']);
  assert.throws(() => {
    m.decide(0, 'accepted');
  }, /still running/);

  m.stream('def check(value):\n    return None\n', 0.5);
  assert.deepEqual(m.render().marks, ['same', 'removed', 'added', 'same', 'same']);
  // without `covered`, the part reached is up to the last original line the output matched
  const n = new ReviewModel(ORIGINAL, '\n');
  n.stream('def check(value):\n    return None\n', null);
  assert.deepEqual(n.render().marks, ['same', 'removed', 'same', 'same']);
  assert.equal(n.result(), ORIGINAL.join('')); // nothing decided: the original
});

void test('review: a CRLF document gets CRLF lines from the model\'s \\n', () => {
  const m = new ReviewModel(['a\r\n', 'b\r\n'], '\r\n');
  m.stream('x\ny', null);
  assert.deepEqual(m.render().lines, ['x\r\n', 'y\r\n', 'a\r\n', 'b\r\n']);
});

void test('lineReplacement: the smallest whole-line change', () => {
  assert.equal(lineReplacement(['a', 'b'], ['a', 'b']), undefined);
  assert.deepEqual(lineReplacement(['a', 'b', 'c'], ['a', 'x', 'y', 'c']), { start: 1, deleteCount: 1, insert: ['x', 'y'] });
  assert.deepEqual(lineReplacement(['a', 'b'], ['a']), { start: 1, deleteCount: 1, insert: [] });
});

void test('applyToRegion: the server\'s line edits, and nothing outside the region', () => {
  const edit = (l0: number, c0: number, l1: number, c1: number, newText: string) => ({
    range: { start: { line: l0, character: c0 }, end: { line: l1, character: c1 } },
    newText,
  });
  // region = lines 10..13 of the document
  assert.equal(
    applyToRegion(ORIGINAL, 10, [edit(11, 0, 12, 0, '    return None\n'), edit(13, 0, 14, 0, '    return None\n')]),
    REWRITE,
  );
  assert.equal(applyToRegion(['a'], 3, [edit(3, 0, 3, 1, 'b')]), 'b');
  assert.throws(() => applyToRegion(ORIGINAL, 10, [edit(9, 0, 10, 0, '')]), /outside the selected lines/);
  assert.throws(() => applyToRegion(ORIGINAL, 10, [edit(14, 0, 15, 0, '')]), /outside the selected lines/);
});

void test('SyncHold: held changes go out in order on release, then pass straight through', async () => {
  const hold = new SyncHold();
  const sent: string[] = [];
  const send = (x: string) => () => {
    sent.push(x);
    return Promise.resolve();
  };
  assert.equal(hold.offer('u', send('a')), false); // not held: the caller sends it
  hold.hold('u');
  assert.equal(hold.offer('u', send('1')), true);
  assert.equal(hold.offer('u', send('2')), true);
  assert.equal(hold.offer('v', send('other')), false);
  assert.deepEqual(sent, []);
  await hold.release('u');
  assert.deepEqual(sent, ['1', '2']);
  assert.equal(hold.isHeld('u'), false);
  assert.equal(hold.offer('u', send('3')), false);
});

void test('typing during a review: above moves the region, below leaves it, inside ends the review', () => {
  // region: lines 10..13
  assert.equal(regionAfterChanges(10, 4, [{ startLine: 2, endLine: 2, text: 'x\ny\n' }]), 12);
  assert.equal(regionAfterChanges(10, 4, [{ startLine: 2, endLine: 5, text: '' }]), 7);
  assert.equal(regionAfterChanges(10, 4, [{ startLine: 14, endLine: 20, text: 'z' }]), 10);
  assert.equal(regionAfterChanges(10, 4, [{ startLine: 13, endLine: 13, text: 'z' }]), 'inside');
  assert.equal(regionAfterChanges(10, 4, [{ startLine: 9, endLine: 10, text: '' }]), 'inside');
  assert.equal(regionAfterChanges(10, 4, [{ startLine: 10, endLine: 10, text: '#' }]), 'inside');
});
