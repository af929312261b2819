import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SENSITIVE_WORDS } from '../../workers/default-words.js';
import { compileDictionary, scanText } from '../../workers/sensitive-words.js';
import runTextTask, { type TextTask } from '../../workers/text-worker.js';

const dict = compileDictionary(['bad', 'scam', '傻瓜', '垃圾']);

test('sensitive words - masks a plain hit', () => {
  assert.deepEqual(scanText(dict, 'this is bad, ok'), { text: 'this is ***, ok', hits: ['bad'] });
});

test('sensitive words - masks a case variant and keeps its neighbours as written', () => {
  assert.deepEqual(scanText(dict, 'So BaD Today'), { text: 'So *** Today', hits: ['bad'] });
});

test('sensitive words - masks a full-width variant', () => {
  assert.deepEqual(scanText(dict, 'ＢＡＤ！Ａ'), { text: '***！Ａ', hits: ['bad'] });
});

test('sensitive words - dictionary words are normalised too', () => {
  const wide = compileDictionary(['ＳＣＡＭ', '  Bad  ']);
  assert.deepEqual(wide.words, ['scam', 'bad']);
  assert.deepEqual(scanText(wide, 'a scam'), { text: 'a ****', hits: ['scam'] });
});

test('sensitive words - spaces and symbols between letters do not stop a match', () => {
  assert.deepEqual(scanText(dict, 'so b a-d!'), { text: 'so *****!', hits: ['bad'] });
  assert.deepEqual(scanText(dict, 'b.a.d'), { text: '*****', hits: ['bad'] });
  assert.deepEqual(scanText(dict, 'b★a★d'), { text: '*****', hits: ['bad'] });
  assert.deepEqual(scanText(dict, 'b\u200Bad'), { text: '****', hits: ['bad'] });
});

test('sensitive words - a span never starts or ends on a separator', () => {
  assert.deepEqual(scanText(dict, '-- bad --'), { text: '-- *** --', hits: ['bad'] });
});

test('sensitive words - letters between the characters of a word stop a match', () => {
  const result = scanText(dict, 'bxad');
  assert.deepEqual(result, { text: 'bxad', hits: [] });
});

test('sensitive words - masks a Chinese word', () => {
  assert.deepEqual(scanText(dict, '你是傻瓜吗'), { text: '你是**吗', hits: ['傻瓜'] });
});

test('sensitive words - masks a Chinese word with spaces and punctuation between characters', () => {
  assert.deepEqual(scanText(dict, '你是傻 瓜吗'), { text: '你是***吗', hits: ['傻瓜'] });
  assert.deepEqual(scanText(dict, '垃，圾！'), { text: '***！', hits: ['垃圾'] });
});

test('sensitive words - masks overlapping words and reports each once', () => {
  const overlap = compileDictionary(['he', 'she', 'his', 'hers']);
  assert.deepEqual(scanText(overlap, 'ushers'), { text: 'u*****', hits: ['she', 'he', 'hers'] });
  assert.deepEqual(scanText(overlap, 'ahishe'), { text: 'a*****', hits: ['his', 'she', 'he'] });
});

test('sensitive words - matches inside a longer word (substring semantics)', () => {
  assert.deepEqual(scanText(dict, 'badge'), { text: '***ge', hits: ['bad'] });
});

test('sensitive words - no hit returns the text unchanged', () => {
  const text = 'Hello ＡＢＣ 你好 😀';
  const result = scanText(dict, text);
  assert.equal(result.text, text);
  assert.deepEqual(result.hits, []);
});

test('sensitive words - emoji next to or inside a hit stay whole code points', () => {
  assert.deepEqual(scanText(dict, '😀bad😀'), { text: '😀***😀', hits: ['bad'] });
  // The emoji is a symbol (\p{So}) between letters: skipped, then masked as one `*`, not two.
  assert.deepEqual(scanText(dict, 'b😀ad𠀀'), { text: '****𠀀', hits: ['bad'] });
});

test('sensitive words - words made of astral code points match', () => {
  const astral = compileDictionary(['𠀀𠀁']);
  assert.deepEqual(scanText(astral, 'x𠀀 𠀁y'), { text: 'x***y', hits: ['𠀀𠀁'] });
});

test('sensitive words - hits are distinct and in order of first occurrence', () => {
  const result = scanText(dict, 'scam bad scam BAD 垃圾');
  assert.equal(result.text, '**** *** **** *** **');
  assert.deepEqual(result.hits, ['scam', 'bad', '垃圾']);
});

test('sensitive words - empty and separator-only words are ignored, duplicates kept once', () => {
  const compiled = compileDictionary(['', '   ', '!!', 'bad', 'BAD', 'b-a-d']);
  assert.deepEqual(compiled.words, ['bad']);
  assert.deepEqual(scanText(compiled, '!! bad'), { text: '!! ***', hits: ['bad'] });
});

test('sensitive words - an empty dictionary matches nothing', () => {
  const empty = compileDictionary([]);
  const text = 'bad scam 傻瓜';
  assert.deepEqual(scanText(empty, text), { text, hits: [] });
  assert.deepEqual(scanText(empty, ''), { text: '', hits: [] });
});

test('sensitive words - default list contains badword', () => {
  assert.ok(DEFAULT_SENSITIVE_WORDS.includes('badword'));
});

test('text worker - filter returns one result per text in order', () => {
  const out = runTextTask({ op: 'filter', texts: ['a badword here', 'clean', '你是骗子'] });
  assert.deepEqual(out, {
    results: [
      { text: 'a ******* here', hits: ['badword'] },
      { text: 'clean', hits: [] },
      { text: '你是**', hits: ['骗子'] },
    ],
  });
  assert.deepEqual(runTextTask({ op: 'filter', texts: [] }), { results: [] });
});

test('text worker - a custom word list replaces the default and survives cache eviction', () => {
  const first = ['pineapple'];
  const run = (words: string[]) => runTextTask({ op: 'filter', texts: ['pineapple badword'], words });
  assert.deepEqual(run(first).results, [{ text: '********* badword', hits: ['pineapple'] }]);
  for (let i = 0; i < 20; i++) {
    assert.deepEqual(run([`w${i}`]).results, [{ text: 'pineapple badword', hits: [] }]);
  }
  assert.deepEqual(run(first).results, [{ text: '********* badword', hits: ['pineapple'] }]);
});

test('text worker - an unknown op throws a clear error', () => {
  const task = { op: 'shout', texts: ['x'] } as unknown as TextTask;
  assert.throws(() => runTextTask(task), { name: 'Error', message: /unknown op "shout"/ });
});

test('text worker - malformed texts throw', () => {
  const task = { op: 'filter', texts: 'bad' } as unknown as TextTask;
  assert.throws(() => runTextTask(task), /texts must be an array of strings/);
});
